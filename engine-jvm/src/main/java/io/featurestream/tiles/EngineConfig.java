package io.featurestream.tiles;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StructType;

/**
 * What the Python side decided (tile, lateness, features) plus where each input lives in a row.
 *
 * <p>Input columns, by name: {@code _key} (string), {@code _ts} (event time, epoch ms), {@code _wm}
 * (the watermark guard), {@code _dk} (dedupe key hash or null), {@code _n<i>} numeric slots
 * (double), {@code _h<i>} hash slots (long), {@code _l<i>} last-value slots (any simple type), and
 * {@code _event} (the event itself, for the late sink); after the map side (PreAggregate) also
 * {@code _partial} (an encoded partial state) and {@code _pwm} (the watermark it was split with).
 */
final class EngineConfig implements Serializable {
  private static final long serialVersionUID = 1L;

  final long tileMs;
  final long latenessMs;
  /** Online-store TTL in ms, 0 when none: how long whole-history features outlive their events. */
  final long ttlMs;
  /** Dedupe bound in ms, -1 when the group has no dedupe step. */
  final long dedupeWithinMs;
  final Feature[] features;
  /** Distinct window lengths in tiles, ascending; a decay boundary is (tile + n) * tileMs. */
  final int[] windowTiles;
  final int maxWindowTiles;
  final boolean hasWholeHistory;
  final boolean java8Time;
  /**
   * History mode (backfill): a record at every accepted event time and at every decay boundary,
   * events taken in event-time order within a micro-batch, nothing folded on the map side.
   */
  final boolean history;

  final int numericSlots;
  final int hashSlots;
  final int lastSlots;
  final int keyIdx;
  final int tsIdx;
  final int dedupeIdx;
  final int numericIdx;
  final int hashIdx;
  final int lastIdx;
  final int eventIdx;
  /** Map-side partial ({@code _partial}, binary) and the watermark it was split with ({@code _pwm}); -1 if absent. */
  final int partialIdx;
  final int pwmIdx;
  /** Number of input columns. */
  final int width;
  final DataType[] lastTypes;
  final DataType eventType;

  private EngineConfig(JsonNode json, StructType input, boolean java8Time) {
    this.tileMs = json.path("tile_ms").asLong();
    this.latenessMs = json.path("lateness_ms").asLong();
    this.ttlMs = json.path("ttl_ms").asLong(0);
    this.dedupeWithinMs = json.path("dedupe_within_ms").asLong(-1);
    this.history = json.path("history").asBoolean(false);
    this.numericSlots = json.path("numeric_slots").asInt();
    this.hashSlots = json.path("hash_slots").asInt();
    this.lastSlots = json.path("last_slots").asInt();
    this.java8Time = java8Time;
    if (tileMs <= 0 || latenessMs < 0) {
      throw new InvalidEngineConfigException("tile_ms must be > 0 and lateness_ms >= 0");
    }
    List<Feature> parsed = new ArrayList<>();
    TreeSet<Integer> windows = new TreeSet<>();
    boolean whole = false;
    for (JsonNode f : json.path("features")) {
      Feature feature = new Feature(f.path("name").asText(), Agg.parse(f.path("agg").asText()),
          f.path("tiles").asInt(), f.path("slot").asInt(-1));
      parsed.add(feature);
      if (feature.tiles > 0) {
        windows.add(feature.tiles);
      } else if (feature.agg == Agg.LAST) {
        whole = true;
      } else {
        throw new InvalidEngineConfigException(feature.name + ": only last may have no window");
      }
    }
    if (parsed.isEmpty()) {
      throw new InvalidEngineConfigException("no features");
    }
    this.features = parsed.toArray(new Feature[0]);
    this.windowTiles = windows.stream().mapToInt(Integer::intValue).toArray();
    this.maxWindowTiles = windows.isEmpty() ? 0 : windows.last();
    this.hasWholeHistory = whole;

    this.keyIdx = input.fieldIndex("_key");
    this.tsIdx = input.fieldIndex("_ts");
    this.dedupeIdx = input.fieldIndex("_dk");
    this.eventIdx = input.fieldIndex("_event");
    java.util.List<String> names = java.util.Arrays.asList(input.fieldNames());
    this.partialIdx = names.indexOf("_partial");
    this.pwmIdx = names.indexOf("_pwm");
    this.width = names.size();
    this.numericIdx = numericSlots > 0 ? input.fieldIndex("_n0") : -1;
    this.hashIdx = hashSlots > 0 ? input.fieldIndex("_h0") : -1;
    this.lastIdx = lastSlots > 0 ? input.fieldIndex("_l0") : -1;
    this.lastTypes = new DataType[lastSlots];
    for (int i = 0; i < lastSlots; i++) {
      lastTypes[i] = input.fields()[input.fieldIndex("_l" + i)].dataType();
    }
    this.eventType = input.fields()[eventIdx].dataType();
  }

  static EngineConfig parse(String json, StructType input, boolean java8Time) {
    try {
      return new EngineConfig(new ObjectMapper().readTree(json), input, java8Time);
    } catch (IOException e) {
      throw new InvalidEngineConfigException("engine config is not JSON: " + e.getMessage());
    } catch (IllegalArgumentException e) {
      if (e instanceof InvalidEngineConfigException) {
        throw e;
      }
      throw new InvalidEngineConfigException("engine config does not fit the input: " + e.getMessage());
    }
  }
}
