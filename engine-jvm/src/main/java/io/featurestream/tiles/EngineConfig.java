package io.featurestream.tiles;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.TreeSet;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StructType;

/**
 * What the Python side decided (tile, lateness, features) plus where each input lives in a row.
 *
 * <p>Input columns, by name: {@code _key} (string), {@code _ts} (event time, epoch ms), {@code _wm}
 * (the watermark guard), {@code _dk} (dedupe key hash or null), {@code _n<i>} numeric slots
 * (double), {@code _h<i>} hash slots (long), {@code _l<i>} last-value slots (any simple type),
 * {@code _q<i>} quantile slots (double), {@code _t<i>} top-k slots (string), and
 * {@code _event} (the event itself, for the late sink: any type, the stream packs it, see
 * PackedRow); after the map side (PreAggregate) also
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
  final int quantileSlots;
  final int topKSlots;
  /** Per hash slot: distinct values kept exactly per tile before the HLL sketch takes over, and its lg K. */
  final int[] distinctExactUpTo;
  final int[] distinctLgK;
  /** Per quantile slot: the KLL sketch's k. */
  final int[] quantileK;
  /** Per top-k slot: the frequent-items sketch's maximum map size (a power of 2). */
  final int[] topKMapSize;
  /** The sketch features, one pass per slot and grain over its longest window (see Windows). */
  final SketchPass[] sketchPasses;
  /** The sketch slots the engine's tiles keep (features of grain 1). */
  final SketchSlots fine;
  /** Sketch bucket grains above 1 (in tiles), ascending; per grain the slots its buckets keep. */
  final int[] grains;
  final SketchSlots[] atGrain;
  /** Per grain: the distinct window lengths in buckets, ascending (decay boundaries, expiry). */
  final int[][] grainWindows;
  /** The longest window of a grain-1 sketch feature in tiles (0 if none): older tiles drop their sketches. */
  final int fineSketchTiles;
  final int keyIdx;
  final int tsIdx;
  final int dedupeIdx;
  final int numericIdx;
  final int hashIdx;
  final int lastIdx;
  final int quantileIdx;
  final int topKIdx;
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
    this.quantileSlots = json.path("quantile_slots").asInt(0);
    this.topKSlots = json.path("top_k_slots").asInt(0);
    this.distinctExactUpTo = new int[hashSlots];
    this.distinctLgK = new int[hashSlots];
    for (int i = 0; i < hashSlots; i++) {
      JsonNode p = json.path("distinct").path(i);
      // Without parameters (configs written before sketches): exact, as approx_count_distinct was.
      distinctExactUpTo[i] = p.path("exact_up_to").asInt(Integer.MAX_VALUE);
      distinctLgK[i] = p.path("lg_k").asInt(DistinctSlot.DEFAULT_LG_K);
      if (distinctExactUpTo[i] < 0 || distinctLgK[i] < 4 || distinctLgK[i] > 21) {
        throw new InvalidEngineConfigException("distinct slot " + i + ": exact_up_to must be >= 0, lg_k 4..21");
      }
    }
    this.quantileK = new int[quantileSlots];
    for (int i = 0; i < quantileSlots; i++) {
      quantileK[i] = json.path("quantile").path(i).path("k").asInt(QuantileSlot.DEFAULT_K);
      if (quantileK[i] < 8 || quantileK[i] > 65_535) {
        throw new InvalidEngineConfigException("quantile slot " + i + ": k must be 8..65535");
      }
    }
    this.topKMapSize = new int[topKSlots];
    for (int i = 0; i < topKSlots; i++) {
      topKMapSize[i] = json.path("top_k").path(i).path("sketch_size").asInt(TopKSlot.DEFAULT_SIZE);
      if (topKMapSize[i] < 8 || Integer.bitCount(topKMapSize[i]) != 1) {
        throw new InvalidEngineConfigException("top-k slot " + i + ": sketch_size must be a power of 2, >= 8");
      }
    }
    this.java8Time = java8Time;
    if (tileMs <= 0 || latenessMs < 0) {
      throw new InvalidEngineConfigException("tile_ms must be > 0 and lateness_ms >= 0");
    }
    List<Feature> parsed = new ArrayList<>();
    TreeSet<Integer> windows = new TreeSet<>();
    boolean whole = false;
    for (JsonNode f : json.path("features")) {
      Feature feature = new Feature(f.path("name").asText(), Agg.parse(f.path("agg").asText()),
          f.path("tiles").asInt(), f.path("slot").asInt(-1), f.path("percentile").asDouble(Double.NaN),
          f.path("rank").asInt(0), f.path("grain").asInt(1));
      checkSketchFeature(feature);
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
    this.sketchPasses = SketchPass.plan(features);
    this.fine = new SketchSlots(hashSlots, quantileSlots, topKSlots);
    TreeMap<Integer, TreeSet<Integer>> byGrain = new TreeMap<>();
    for (Feature f : features) {
      if (SketchPass.isSketch(f.agg) && f.grain > 1) {
        byGrain.computeIfAbsent(f.grain, g -> new TreeSet<>()).add(f.buckets());
      }
    }
    this.grains = byGrain.keySet().stream().mapToInt(Integer::intValue).toArray();
    this.grainWindows = byGrain.values().stream()
        .map(w -> w.stream().mapToInt(Integer::intValue).toArray()).toArray(int[][]::new);
    this.atGrain = new SketchSlots[grains.length];
    for (int g = 0; g < grains.length; g++) {
      atGrain[g] = new SketchSlots(hashSlots, quantileSlots, topKSlots);
    }
    int fineTiles = 0;
    for (Feature f : features) {
      if (SketchPass.isSketch(f.agg)) {
        (f.grain == 1 ? fine : atGrain[grainIndex(f.grain)]).use(f.agg, f.slot);
        fineTiles = f.grain == 1 ? Math.max(fineTiles, f.tiles) : fineTiles;
      }
    }
    this.fineSketchTiles = fineTiles;

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
    this.quantileIdx = quantileSlots > 0 ? input.fieldIndex("_q0") : -1;
    this.topKIdx = topKSlots > 0 ? input.fieldIndex("_t0") : -1;
    this.lastTypes = new DataType[lastSlots];
    for (int i = 0; i < lastSlots; i++) {
      lastTypes[i] = input.fields()[input.fieldIndex("_l" + i)].dataType();
    }
    this.eventType = input.fields()[eventIdx].dataType();
  }

  /** The position of a grain above 1 in {@link #grains}. */
  int grainIndex(int grain) {
    return java.util.Arrays.binarySearch(grains, grain);
  }

  private void checkSketchFeature(Feature f) {
    if (f.grain < 1 || (f.grain > 1 && (!SketchPass.isSketch(f.agg) || f.grain > f.tiles))) {
      throw new InvalidEngineConfigException(f.name + ": grain must be 1, or for a sketch 1..its window in tiles");
    }
    int slots;
    switch (f.agg) {
      case APPROX_COUNT_DISTINCT:
        slots = hashSlots;
        break;
      case APPROX_PERCENTILE:
        slots = quantileSlots;
        if (!(f.percentile >= 0 && f.percentile <= 1)) {
          throw new InvalidEngineConfigException(f.name + ": percentile must be in [0, 1]");
        }
        break;
      case TOP_K:
      case TOP_K_SHARE:
        slots = topKSlots;
        if (f.rank < 1) {
          throw new InvalidEngineConfigException(f.name + ": rank must be >= 1");
        }
        break;
      default:
        return;
    }
    if (f.slot < 0 || f.slot >= slots) {
      throw new InvalidEngineConfigException(f.name + ": slot " + f.slot + " does not exist");
    }
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
