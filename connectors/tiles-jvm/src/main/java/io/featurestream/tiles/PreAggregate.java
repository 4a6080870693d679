package io.featurestream.tiles;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayDeque;
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
  private static final byte PARTIAL_VERSION = 1;

  private final EngineConfig cfg;
  private final int width;

  /** @param cfg the configuration over the engine's mapped input (with _partial and _pwm) */
  PreAggregate(EngineConfig cfg) {
    this.cfg = cfg;
    this.width = cfg.width;
  }

  /** The batch's watermark from the task's local properties, or null when unknown or stale. */
  static Long batchWatermark(TaskContext task) {
    if (task == null) {
      return null;
    }
    String value = task.getLocalProperty(WATERMARK_PROPERTY);
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
    private final HashMap<String, Fold> partials = new HashMap<>();
    private final ArrayDeque<Row> ready = new ArrayDeque<>();

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
      } else if (cfg.dedupeWithinMs >= 0) {
        ready.add(widen(row, false, boxedWatermark));
      } else {
        String key = row.getString(cfg.keyIdx);
        Fold fold = partials.get(key);
        if (fold == null) {
          if (partials.size() >= MAX_ENTITIES) {
            flush();
          }
          fold = new Fold(new EntityState(cfg));
          partials.put(key, fold);
        }
        fold.add(row, t);
      }
    }

    private void flush() {
      for (Map.Entry<String, Fold> e : partials.entrySet()) {
        Fold fold = e.getValue();
        Object[] values = new Object[width];
        values[cfg.keyIdx] = e.getKey();
        values[cfg.tsIdx] = fold.state.maxEvent;
        values[cfg.partialIdx] = encode(fold.state, fold.events, cfg);
        values[cfg.pwmIdx] = boxedWatermark;
        ready.add(RowFactory.create(values));
      }
      partials.clear();
    }
  }

  /**
   * One entity's partial in a task, and the tile its previous event went to: events mostly come
   * in time order, so the next one usually lands in the same tile without a look-up.
   */
  private final class Fold {
    final EntityState state;
    long events;
    private Tile recent;

    Fold(EntityState state) {
      this.state = state;
    }

    void add(Row row, long t) {
      events++;
      Tile tile = null;
      if (cfg.maxWindowTiles > 0) {
        long index = Math.floorDiv(t, cfg.tileMs);
        if (recent == null || recent.index != index) {
          recent = state.tile(index, cfg);
        }
        tile = recent;
      }
      TileFunction.add(cfg, state, tile, row, t);
    }
  }

  /** A partial: number of events, newest event time, whole-history last values, tiles. */
  static byte[] encode(EntityState s, long events, EngineConfig cfg) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream(32 + s.tiles.size() * 64);
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeByte(PARTIAL_VERSION);
      out.writeLong(events);
      out.writeLong(s.maxEvent);
      for (int i = 0; i < cfg.lastSlots; i++) {
        out.writeLong(s.lastTs[i]);
        Values.write(out, s.lastValue[i]);
      }
      s.writeTiles(out, cfg);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }

  /** Merges an encoded partial into {@code s}; returns its number of events. */
  static long mergeInto(EntityState s, byte[] data, EngineConfig cfg) {
    try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(data))) {
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
      p.readTiles(in, cfg);
      s.merge(p, cfg);
      return events;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
