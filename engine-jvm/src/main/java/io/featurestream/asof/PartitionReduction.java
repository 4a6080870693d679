package io.featurestream.asof;

import java.lang.ref.SoftReference;
import java.util.Arrays;
import java.util.Iterator;
import java.util.NoSuchElementException;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;
import org.apache.spark.sql.catalyst.expressions.UnsafeRow;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.unsafe.Platform;

/**
 * One task of {@link LabelIntervalReduce}: reads its partition until {@code maxGroups} (key,
 * interval) groups are held or the held rows fill the arena, then yields one row per group.
 *
 * <p>Kept free of per-row allocation, because the garbage of a copied row per group measured as
 * much as the work: a group's newest EventTime sits in the task layout next to the key's label
 * times ({@link LabelIndex#taskLayout}), its row's bytes in one byte arena, and the rows handed on
 * are a single reused UnsafeRow (as Spark's own operators do: a consumer copies what it keeps).
 * The arrays go back to a per-thread pool when the partition is done; yielding a group resets its
 * slot, so a finished task leaves them as it found them.
 */
final class PartitionReduction implements Iterator<InternalRow> {
  private static final long EMPTY = Long.MIN_VALUE;
  // Row bytes (held and replaced) before a flush: bounds a task thread's memory. Compacting the
  // replaced rows away instead was measured: for 1M labels x 10M features the held rows alone
  // outgrew half of it, so it flushed anyway.
  private static final int ARENA_BYTES = 64 << 20;
  private static final ThreadLocal<SoftReference<Buffers>> POOL = new ThreadLocal<>();

  private final Iterator<InternalRow> input;
  private final LabelIndex labels;
  private final boolean strictlyBefore;
  private final int maxGroups;
  private final int keyCount;
  private final int rowFields;
  private final int recordFields;
  private final int recordBitSet;
  private final KeyBytes keyOf;
  private final UnsafeProjection toUnsafe;
  private final LabelIntervalReduce.RecordOrder order;
  private final UnsafeRow held;
  private final UnsafeRow out;
  private Buffers buffers;
  // The batch being looked up: its rows' bytes, views on them, and per-row lookup state.
  private static final int BATCH = 16;
  private byte[] batchBytes = new byte[BATCH * 256];
  private final UnsafeRow[] rows = new UnsafeRow[BATCH];
  private final int[] offsets = new int[BATCH];
  private final int[] sizes = new int[BATCH];
  private final int[] hashes = new int[BATCH];
  private final int[] slots = new int[BATCH];
  private final long[] ranges = new long[BATCH];
  private final long[] firstTimes = new long[BATCH];
  private int groups;
  private int emitted;

  /** Per-task arrays, reused by the next task of the same join on the same thread. */
  private static final class Buffers {
    final LabelIndex labels;
    final int maxGroups;
    final long[] layout;
    final int[] rowOffset;
    final int[] rowSize;
    final int[] groupOf;
    final int[] layoutAt;
    byte[] arena = new byte[1 << 20];
    int arenaUsed;

    Buffers(LabelIndex labels, int maxGroups) {
      this.labels = labels;
      this.maxGroups = maxGroups;
      this.layout = labels.taskLayout(EMPTY);
      this.rowOffset = new int[labels.intervals()];
      this.rowSize = new int[labels.intervals()];
      // A batch read below the bound can add BATCH groups at most.
      this.groupOf = new int[Math.min(maxGroups + BATCH, labels.intervals())];
      this.layoutAt = new int[groupOf.length];
    }
  }

  PartitionReduction(Iterator<InternalRow> input, LabelIndex labels, DataType[] keyTypes, StructType recordType,
      boolean strictlyBefore, int maxGroups) {
    this.input = input;
    this.labels = labels;
    this.strictlyBefore = strictlyBefore;
    this.maxGroups = Math.max(1, Math.min(maxGroups, labels.intervals()));
    this.keyCount = keyTypes.length;
    this.rowFields = keyCount + 2;
    this.recordFields = recordType.fields().length;
    this.recordBitSet = UnsafeRow.calculateBitSetWidthInBytes(recordFields);
    this.keyOf = new KeyBytes(keyTypes);
    DataType[] all = new DataType[rowFields];
    System.arraycopy(keyTypes, 0, all, 0, keyCount);
    all[keyCount] = DataTypes.TimestampType;
    all[keyCount + 1] = recordType;
    this.toUnsafe = UnsafeProjection.create(all);
    this.order = new LabelIntervalReduce.RecordOrder(recordType);
    this.out = new UnsafeRow(rowFields);
    for (int i = 0; i < BATCH; i++) {
      rows[i] = new UnsafeRow(rowFields);
    }
    this.held = new UnsafeRow(rowFields);
    this.buffers = borrow(labels, this.maxGroups);
  }

  private static Buffers borrow(LabelIndex labels, int maxGroups) {
    SoftReference<Buffers> pooled = POOL.get();
    Buffers buffers = pooled == null ? null : pooled.get();
    POOL.remove(); // a task that fails half-way never returns dirty arrays
    if (buffers != null && buffers.labels == labels && buffers.maxGroups == maxGroups) {
      return buffers;
    }
    return new Buffers(labels, maxGroups);
  }

  @Override
  public boolean hasNext() {
    if (emitted == groups) {
      if (buffers == null) {
        return false;
      }
      fill();
      if (groups == 0) {
        POOL.set(new SoftReference<>(buffers));
        buffers = null;
        return false;
      }
    }
    return true;
  }

  @Override
  public InternalRow next() {
    if (!hasNext()) {
      throw new NoSuchElementException();
    }
    int group = buffers.groupOf[emitted];
    int at = buffers.layoutAt[emitted++];
    out.pointTo(buffers.arena, Platform.BYTE_ARRAY_OFFSET + buffers.rowOffset[group], buffers.rowSize[group]);
    buffers.layout[at] = EMPTY;
    return out;
  }

  /**
   * Reads rows in batches of BATCH and looks each batch up in three passes (table slot, then the
   * key's bytes and label times, then the search and update), so the cache misses of different
   * rows overlap instead of queueing one after another: every lookup is a few random reads in
   * arrays of several MB, and that latency, not arithmetic, is the cost of this loop.
   */
  private void fill() {
    Buffers b = buffers;
    long[] layout = b.layout;
    groups = 0;
    emitted = 0;
    b.arenaUsed = 0;
    // With room for every interval no new group can overflow; otherwise stop at maxGroups.
    boolean bounded = maxGroups < labels.intervals();
    while ((!bounded || groups < maxGroups) && b.arenaUsed < ARENA_BYTES && input.hasNext()) {
      int n = gather();
      for (int i = 0; i < n; i++) {
        if (keyOf.read(rows[i])) {
          hashes[i] = keyOf.hash();
          slots[i] = labels.home(hashes[i]);
          ranges[i] = labels.slotRange(slots[i]); // the load that misses; used by find below
        } else {
          ranges[i] = -1;
        }
      }
      for (int i = 0; i < n; i++) {
        if (ranges[i] != -1 && keyOf.read(rows[i])) {
          ranges[i] = labels.find(keyOf, hashes[i], slots[i], ranges[i]);
          if (ranges[i] >= 0) {
            firstTimes[i] = layout[2 * (int) (ranges[i] >>> 32)]; // the key's times: loaded here
          }
        }
      }
      for (int i = 0; i < n; i++) {
        UnsafeRow row = rows[i];
        if (ranges[i] < 0 || row.isNullAt(keyCount)) {
          continue; // no label has this key (the caller drops null times and keys before)
        }
        int start = (int) (ranges[i] >>> 32);
        int end = (int) ranges[i];
        long s = row.getLong(keyCount);
        int group = (strictlyBefore ? firstTimes[i] > s : firstTimes[i] >= s)
            ? start : LabelIndex.group(layout, start, end, s, strictlyBefore);
        if (group < 0) {
          continue; // after the key's last label: no label can see it
        }
        long eventTime = eventTime(row);
        int at = end + group;
        long current = layout[at];
        if (current == EMPTY) {
          b.groupOf[groups] = group;
          b.layoutAt[groups++] = at;
        } else if (eventTime < current || (eventTime == current
            && order.compare(row.getStruct(keyCount + 1, recordFields), heldRow(group)) <= 0)) {
          continue;
        }
        layout[at] = eventTime;
        keep(row, group);
      }
    }
  }

  /** Copies up to BATCH input rows into the batch buffer (the input reuses its row object). */
  private int gather() {
    int n = 0;
    int used = 0;
    while (n < BATCH && input.hasNext()) {
      InternalRow next = input.next();
      UnsafeRow row = next instanceof UnsafeRow ? (UnsafeRow) next : toUnsafe.apply(next);
      int size = row.getSizeInBytes();
      if (batchBytes.length < used + size) {
        batchBytes = Arrays.copyOf(batchBytes, Math.max(batchBytes.length * 2, used + size));
      }
      Platform.copyMemory(row.getBaseObject(), row.getBaseOffset(), batchBytes, Platform.BYTE_ARRAY_OFFSET + used,
          size);
      offsets[n] = used;
      sizes[n++] = size;
      used += size;
    }
    for (int i = 0; i < n; i++) {
      rows[i].pointTo(batchBytes, Platform.BYTE_ARRAY_OFFSET + offsets[i], sizes[i]);
    }
    return n;
  }

  /** The record's first field (its EventTime), read in place from an UnsafeRow. */
  private long eventTime(InternalRow row) {
    if (!(row instanceof UnsafeRow)) {
      return row.getStruct(keyCount + 1, recordFields).getLong(0);
    }
    UnsafeRow unsafe = (UnsafeRow) row;
    long structOffset = unsafe.getLong(keyCount + 1) >>> 32;
    return Platform.getLong(unsafe.getBaseObject(), unsafe.getBaseOffset() + structOffset + recordBitSet);
  }

  /** The record of the row held for a group. */
  private InternalRow heldRow(int group) {
    held.pointTo(buffers.arena, Platform.BYTE_ARRAY_OFFSET + buffers.rowOffset[group], buffers.rowSize[group]);
    return held.getStruct(keyCount + 1, recordFields);
  }

  /** Appends the row's bytes to the arena (a replaced row's bytes stay until the flush). */
  private void keep(UnsafeRow row, int group) {
    Buffers b = buffers;
    int size = row.getSizeInBytes();
    if (b.arena.length - b.arenaUsed < size) {
      b.arena = Arrays.copyOf(b.arena, Math.max(b.arena.length * 2, b.arenaUsed + size));
    }
    Platform.copyMemory(row.getBaseObject(), row.getBaseOffset(), b.arena, Platform.BYTE_ARRAY_OFFSET + b.arenaUsed, size);
    b.rowOffset[group] = b.arenaUsed;
    b.rowSize[group] = size;
    b.arenaUsed += size;
  }
}
