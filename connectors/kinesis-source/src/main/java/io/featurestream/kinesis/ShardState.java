package io.featurestream.kinesis;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/** One shard in an offset: where its next batch starts, its parents, and whether it is read to its end. */
public final class ShardState implements Serializable {
    private static final long serialVersionUID = 1L;

    private final String shardId;
    private final List<String> parents;
    private final ShardPosition position;
    private final boolean finished;

    public ShardState(String shardId, List<String> parents, ShardPosition position, boolean finished) {
        this.shardId = shardId;
        List<String> sorted = new ArrayList<>(parents);
        Collections.sort(sorted);
        this.parents = Collections.unmodifiableList(sorted);
        this.position = position;
        this.finished = finished;
    }

    public String shardId() {
        return shardId;
    }

    public List<String> parents() {
        return parents;
    }

    public ShardPosition position() {
        return position;
    }

    /** Closed and read past its last record: nothing more will ever come from it. */
    public boolean finished() {
        return finished;
    }

    ShardState withProgress(ShardPosition next, boolean nowFinished) {
        return new ShardState(shardId, parents, next, finished || nowFinished);
    }

    ObjectNode toJson() {
        ObjectNode node = position.toJson();
        if (!parents.isEmpty()) {
            ArrayNode array = node.putArray("parents");
            parents.forEach(array::add);
        }
        if (finished) {
            node.put("finished", true);
        }
        return node;
    }

    static ShardState fromJson(String shardId, JsonNode node) {
        List<String> parents = new ArrayList<>();
        JsonNode array = node.get("parents");
        if (array != null) {
            array.forEach(p -> parents.add(p.asText()));
        }
        JsonNode finished = node.get("finished");
        return new ShardState(shardId, parents, ShardPosition.fromJson(node),
                finished != null && finished.asBoolean());
    }
}
