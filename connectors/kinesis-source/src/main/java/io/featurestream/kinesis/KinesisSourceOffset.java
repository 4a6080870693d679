package io.featurestream.kinesis;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.apache.spark.sql.connector.read.streaming.Offset;

/**
 * The offset Spark writes to its offset log: a batch number ("epoch") and, per shard, where that
 * batch starts. Where the batch ends is decided by the first reader of each shard and recorded
 * beside the checkpoint ({@link BatchEndStore}); the next offset's starts are those ends.
 * Epoch -1 is the initial offset, which no batch ever reads.
 */
public final class KinesisSourceOffset extends Offset {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private final long epoch;
    private final SortedMap<String, ShardState> shards;

    public KinesisSourceOffset(long epoch, Map<String, ShardState> shards) {
        this.epoch = epoch;
        this.shards = Collections.unmodifiableSortedMap(new TreeMap<>(shards));
    }

    public long epoch() {
        return epoch;
    }

    public SortedMap<String, ShardState> shards() {
        return shards;
    }

    /** Shards this offset's batch reads: not finished, and every parent still known is finished. */
    public List<ShardState> readyShards() {
        List<ShardState> ready = new ArrayList<>();
        for (ShardState shard : shards.values()) {
            if (!shard.finished() && parentsDone(shard)) {
                ready.add(shard);
            }
        }
        return ready;
    }

    private boolean parentsDone(ShardState shard) {
        for (String parent : shard.parents()) {
            ShardState state = shards.get(parent);
            // a parent gone from the listing has expired: nothing of it is left to read first
            if (state != null && !state.finished()) {
                return false;
            }
        }
        return true;
    }

    @Override
    public String json() {
        ObjectNode root = MAPPER.createObjectNode();
        root.put("epoch", epoch);
        ObjectNode shardsNode = root.putObject("shards");
        shards.forEach((id, state) -> shardsNode.set(id, state.toJson()));
        return root.toString();
    }

    public static KinesisSourceOffset fromJson(String json) {
        try {
            JsonNode root = MAPPER.readTree(json);
            Map<String, ShardState> shards = new TreeMap<>();
            Iterator<Map.Entry<String, JsonNode>> fields = root.get("shards").fields();
            while (fields.hasNext()) {
                Map.Entry<String, JsonNode> field = fields.next();
                shards.put(field.getKey(), ShardState.fromJson(field.getKey(), field.getValue()));
            }
            return new KinesisSourceOffset(root.get("epoch").asLong(), shards);
        } catch (IOException | RuntimeException e) {
            throw new KinesisSourceException("unreadable Kinesis offset: " + json, e);
        }
    }
}
