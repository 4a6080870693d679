package io.featurestream.tiles;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;

/**
 * The map side of the engine: before the shuffle to the entity's state, each input partition
 * folds its events per entity into a partial state (tiles, whole-history last values, newest
 * event time, number of events), so the shuffle and the state function see about one row per
 * entity and partition instead of one per event.
 *
 * <p>Exactness needs the micro-batch's watermark W here, because an event is late iff its time is
 * below W and a late event must reach the late sink whole. The foreachBatch body that consumes the
 * engine's output reads W from the query's offset log (the value the state operator also uses) and
 * hands it to the tasks as the local property {@link #WATERMARK_PROPERTY} ("batchId:W"). With W
 * known:
 *
 * <ul>
 *   <li>an event with time &lt; W goes on alone, with its {@code _event} struct (late);
 *   <li>with a dedupe step (an order-dependent rule that needs the state), an event goes on alone
 *       without its {@code _event} struct (it is not late, so the struct is never needed);
 *   <li>otherwise the event is folded into its entity's partial.
 * </ul>
 *
 * Every row that leaves carries the W it was split with ({@code _pwm}); the state function refuses
 * a partial split with another watermark than its own. Without the property (the engine's output
 * consumed some other way) every event goes on alone, whole: the engine's original path.
 */
final class PreAggregate implements MapPartitionsFunction<Row, Row> {
  private static final long serialVersionUID = 1L;
  /** Local property the engine's consumer sets around the jobs of a micro-batch: "batchId:watermarkMs". */
  static final String WATERMARK_PROPERTY = "featurestream.tiles.batchWatermark";
  /** Spark's own local property with the micro-batch id, set on the query's thread. */
  static final String SPARK_BATCH_ID_PROPERTY = "streaming.sql.batchId";
  /** Partials held per task before they are flushed (bounds the map side's memory). */
  static final int MAX_ENTITIES = 50_000;
  /** Partials live only between a task and the state function of the same job: never stored. */
  private static final byte PARTIAL_VERSION = 3;

  private final EngineConfig cfg;
  private final int width;

  /** @param cfg the configuration over the engine's mapped input (with _partial and _pwm) */
  PreAggregate(EngineConfig cfg) {
    this.cfg = cfg;
    this.width = cfg.width;
  }

  /** The batch's watermark from the task's local properties, or null when unknown or stale. */
  static Long batchWatermark(TaskContext task) {
    return batchValue(task, WATERMARK_PROPERTY);
  }

  /** A `batchId:value` local property of the task, or null when unset or of another batch. */
  static Long batchValue(TaskContext task, String property) {
    if (task == null) {
      return null;
    }
    String value = task.getLocalProperty(property);
    if (value == null) {
      return null;
    }
    int colon = value.indexOf(':');
    String batch = value.substring(0, colon);
    String sparkBatch = task.getLocalProperty(SPARK_BATCH_ID_PROPERTY);
    if (sparkBatch != null && !sparkBatch.equals(batch)) {
      return null;
    }
    return Long.parseLong(value.substring(colon + 1));
  }

  /** Per task thread: the task attempt the cached watermark belongs to, and the watermark. */
  private static final ThreadLocal<Object[]> CURRENT = ThreadLocal.withInitial(() -> new Object[] {-1L, null});

  /** {@link #batchWatermark} of the running task, looked up once per task (a UDF calls it per row). */
  static Long currentWatermark() {
    TaskContext task = TaskContext.get();
    if (task == null) {
      return null;
    }
    Object[] cached = CURRENT.get();
    if ((Long) cached[0] != task.taskAttemptId()) {
      cached[0] = task.taskAttemptId();
      cached[1] = batchWatermark(task);
    }
    return (Long) cached[1];
  }

  @Override
  public Iterator<Row> call(Iterator<Row> rows) {
    return process(rows, currentWatermark());
  }

  /** The map side with a known watermark, or (null) every event passed on whole. */
  Iterator<Row> process(Iterator<Row> rows, Long watermark) {
    if (watermark == null) {
      return new Iterator<Row>() {
        @Override
        public boolean hasNext() {
          return rows.hasNext();
        }

        @Override
        public Row next() {
          return widen(rows.next(), true, null);
        }
      };
    }
    return new Folding(rows, watermark);
  }

  /** The input row in the mapped layout: the event struct kept or dropped, no partial. */
  private Row widen(Row row, boolean keepEvent, Long watermark) {
    Object[] values = new Object[width];
    for (int i = 0; i < row.length(); i++) {
      values[i] = row.get(i);
    }
    if (!keepEvent) {
      values[cfg.eventIdx] = null;
    }
    values[cfg.pwmIdx] = watermark;
    return RowFactory.create(values);
  }

  private final class Folding implements Iterator<Row> {
    private final Iterator<Row> rows;
    private final long watermark;
    private final Long boxedWatermark;
    private final boolean compact = CompactFold.applies(cfg);
    private final HashMap<String, Partial> partials = new HashMap<>();
    private final ArrayDeque<Row> ready = new ArrayDeque<>();
    /** The task's encode buffer, emptied for each partial. */
    private final StateBytes.Out sink = StateBytes.out(4096);
    private final DataOutputStream out = sink.data();
    /** The task's top-k values, one object each (see SketchBuffer). */
    private final StringCanon canon = cfg.topKSlots > 0 ? new StringCanon() : null;

    Folding(Iterator<Row> rows, long watermark) {
      this.rows = rows;
      this.watermark = watermark;
      this.boxedWatermark = watermark;
    }

    @Override
    public boolean hasNext() {
      while (ready.isEmpty()) {
        if (!rows.hasNext()) {
          if (partials.isEmpty()) {
            return false;
          }
          flush();
          continue;
        }
        consume(rows.next());
      }
      return true;
    }

    @Override
    public Row next() {
      if (!hasNext()) {
        throw new java.util.NoSuchElementException();
      }
      return ready.poll();
    }

    private void consume(Row row) {
      long t = row.getLong(cfg.tsIdx);
      if (t < watermark) {
        ready.add(widen(row, true, boxedWatermark));
      } else if (cfg.dedupeWithinMs >= 0 || cfg.history) {
        // Dedupe needs the state, history mode every event: both travel alone, without the struct.
        ready.add(widen(row, false, boxedWatermark));
      } else {
        String key = row.getString(cfg.keyIdx);
        Partial fold = partials.get(key);
        if (fold == null) {
          if (partials.size() >= MAX_ENTITIES) {
            flush();
          }
          fold = compact ? new CompactFold(cfg) : new Fold(new EntityState(cfg), canon);
          partials.put(key, fold);
        }
        fold.add(row, t);
      }
    }

    private void flush() {
      for (Map.Entry<String, Partial> e : partials.entrySet()) {
        Partial fold = e.getValue();
        Object[] values = new Object[width];
        values[cfg.keyIdx] = e.getKey();
        values[cfg.tsIdx] = fold.maxEvent();
        sink.reset();
        try {
          fold.encode(cfg, out);
        } catch (IOException ex) {
          throw new UncheckedIOException(ex);
        }
        values[cfg.partialIdx] = sink.toByteArray();
        values[cfg.pwmIdx] = boxedWatermark;
        ready.add(RowFactory.create(values));
      }
      partials.clear();
    }
  }

  /**
   * One entity's partial in a task, and the tile (and sketch buckets) its previous event went to:
   * events mostly come in time order, so the next one usually lands in the same tile without a
   * look-up.
   */
  private interface Partial {
    void add(Row row, long t);

    long maxEvent();

    /** Writes the partial to {@code out}. */
    void encode(EngineConfig cfg, DataOutputStream out) throws IOException;

    /** The partial in an array of its own. */
    default byte[] encode(EngineConfig cfg) {
      StateBytes.Out sink = StateBytes.out(256);
      try (DataOutputStream out = sink.data()) {
        encode(cfg, out);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      return sink.toByteArray();
    }
  }

  private final class Fold implements Partial {
    final EntityState state;
    long events;
    private Tile recent;
    private final Tile[] recentBuckets;
    /** The sketch inputs not yet folded (null: updated as they come, see SketchBuffer). */
    private final SketchBuffer pending;

    /** Whether the events' tiles wait for the replay too (SketchBuffer#deferring). */
    private final boolean deferred;

    Fold(EntityState state, StringCanon canon) {
      this.state = state;
      this.recentBuckets = new Tile[cfg.grains.length];
      this.deferred = SketchBuffer.deferring(cfg);
      this.pending = SketchBuffer.applies(cfg) ? new SketchBuffer(cfg, deferred, canon) : null;
    }

    @Override
    public long maxEvent() {
      return state.maxEvent;
    }

    @Override
    public void encode(EngineConfig cfg, DataOutputStream out) throws IOException {
      if (pending != null) {
        pending.replay(cfg, state, recentBuckets);
      }
      PreAggregate.encode(state, events, cfg, out);
    }

    @Override
    public void add(Row row, long t) {
      events++;
      if (deferred) {
        state.maxEvent = Math.max(state.maxEvent, t);
        pending.addDeferred(cfg, t, row);
        if (pending.isFull()) {
          pending.replay(cfg, state, recentBuckets);
        }
        return;
      }
      Tile tile = null;
      if (cfg.maxWindowTiles > 0) {
        long index = Math.floorDiv(t, cfg.tileMs);
        if (recent == null || recent.index != index) {
          recent = state.tile(index, cfg);
        }
        tile = recent;
      }
      if (pending == null) {
        TileFunction.add(cfg, state, tile, recentBuckets, row, t);
        return;
      }
      TileFunction.addExceptSketches(cfg, state, tile, row, t);
      pending.add(cfg, tile, row);
      if (pending.isFull()) {
        pending.replay(cfg, state, recentBuckets);
      }
    }
  }

  /**
   * The same partial as {@link Fold} for groups whose inputs are all numeric (no distinct, percentile, top-k or
   * {@code last} inputs) and that have windows, in a handful of primitive arrays per entity
   * instead of a tree of tiles (about 5 objects per entity instead of ~10 per tile): the map side
   * holds every entity of its partition until the end of the task, and young collections copy
   * whatever it holds. Each numeric slot is updated exactly as {@link Tile#addNumeric} does (same
   * operations in the same order), and {@link #encode} writes the bytes {@link PreAggregate#encode}
   * writes for the equivalent state (tiles in ascending order), which {@code PreAggregateTest}
   * checks.
   */
  static final class CompactFold implements Partial {
    private static final int STRIDE = 5;
    private final int slots;
    private final int numericIdx;
    private final long tileMs;
    long events;
    long maxEvent = EntityState.NONE;
    private int size;
    private long[] index = new long[4];
    private long[] count = new long[4];
    private long[] n;
    private double[] stats;
    private int recent = -1;

    static boolean applies(EngineConfig cfg) {
      return cfg.maxWindowTiles > 0 && cfg.hashSlots == 0 && cfg.lastSlots == 0 && cfg.quantileSlots == 0
          && cfg.topKSlots == 0;
    }

    CompactFold(EngineConfig cfg) {
      this.slots = cfg.numericSlots;
      this.numericIdx = cfg.numericIdx;
      this.tileMs = cfg.tileMs;
      this.n = new long[4 * slots];
      this.stats = new double[4 * slots * STRIDE];
    }

    @Override
    public long maxEvent() {
      return maxEvent;
    }

    @Override
    public void add(Row row, long t) {
      events++;
      maxEvent = Math.max(maxEvent, t);
      int tile = tileOf(Math.floorDiv(t, tileMs));
      count[tile]++;
      for (int i = 0; i < slots; i++) {
        int idx = numericIdx + i;
        if (!row.isNullAt(idx)) {
          addNumeric(tile * slots + i, row.getDouble(idx));
        }
      }
    }

    /** Tile.addNumeric on slot {@code j} (tile * slots + slot) of the flat arrays. */
    private void addNumeric(int j, double v) {
      long k = ++n[j];
      double[] st = stats;
      int o = j * STRIDE;
      st[o] += v;
      double delta = v - st[o + 1];
      st[o + 1] += delta / k;
      st[o + 2] += delta * (v - st[o + 1]);
      if (k == 1) {
        st[o + 3] = v;
        st[o + 4] = v;
      } else {
        st[o + 3] = Math.min(st[o + 3], v);
        st[o + 4] = Math.max(st[o + 4], v);
      }
    }

    /** The position of tile {@code k}, added when new; events mostly stay in the previous one. */
    private int tileOf(long k) {
      if (recent >= 0 && index[recent] == k) {
        return recent;
      }
      for (int i = size - 1; i >= 0; i--) {
        if (index[i] == k) {
          recent = i;
          return i;
        }
      }
      if (size == index.length) {
        int cap = size * 2;
        index = Arrays.copyOf(index, cap);
        count = Arrays.copyOf(count, cap);
        n = Arrays.copyOf(n, cap * slots);
        stats = Arrays.copyOf(stats, cap * slots * STRIDE);
      }
      index[size] = k;
      recent = size;
      return size++;
    }

    @Override
    public void encode(EngineConfig cfg, DataOutputStream out) throws IOException {
      Integer[] order = new Integer[size];
      for (int i = 0; i < size; i++) {
        order[i] = i;
      }
      Arrays.sort(order, (a, b) -> Long.compare(index[a], index[b]));
      out.writeByte(PARTIAL_VERSION);
      out.writeLong(events);
      out.writeLong(maxEvent);
      out.writeInt(size);
      for (int i : order) {
        out.writeLong(index[i]);
        out.writeLong(count[i]);
        for (int s = 0; s < slots; s++) {
          int j = i * slots + s;
          out.writeLong(n[j]);
          for (int f = 0; f < STRIDE; f++) {
            out.writeDouble(stats[j * STRIDE + f]);
          }
        }
      }
    }
  }

  /** A partial: number of events, newest event time, whole-history last values, tiles. */
  static byte[] encode(EntityState s, long events, EngineConfig cfg) {
    StateBytes.Out sink = StateBytes.out(32 + s.tiles.size() * 64);
    try (DataOutputStream out = sink.data()) {
      encode(s, events, cfg, out);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return sink.toByteArray();
  }

  /** The same, written to {@code out}. */
  static void encode(EntityState s, long events, EngineConfig cfg, DataOutputStream out) throws IOException {
    out.writeByte(PARTIAL_VERSION);
    out.writeLong(events);
    out.writeLong(s.maxEvent);
    for (int i = 0; i < cfg.lastSlots; i++) {
      out.writeLong(s.lastTs[i]);
      Values.write(out, s.lastValue[i]);
    }
    // The sketches' plain forms: the compact ones (state format 4) cost the map side more CPU
    // than the smaller shuffle saves.
    s.writeTiles(out, cfg, false);
  }

  /** Merges an encoded partial into {@code s}; returns its number of events. */
  static long mergeInto(EntityState s, byte[] data, EngineConfig cfg) {
    try (DataInputStream in = StateBytes.in(data)) {
      byte version = in.readByte();
      if (version != PARTIAL_VERSION) {
        throw new IllegalStateException("partial tile format " + version + " is not " + PARTIAL_VERSION);
      }
      long events = in.readLong();
      EntityState p = new EntityState(cfg);
      p.maxEvent = in.readLong();
      for (int i = 0; i < cfg.lastSlots; i++) {
        p.lastTs[i] = in.readLong();
        p.lastValue[i] = Values.read(in);
      }
      p.readTiles(in, cfg, EntityState.VERSION);
      s.merge(p, cfg);
      return events;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
