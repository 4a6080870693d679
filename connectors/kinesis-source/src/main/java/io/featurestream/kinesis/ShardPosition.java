package io.featurestream.kinesis;

import java.io.Serializable;
import java.time.Instant;
import java.util.Objects;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import software.amazon.awssdk.services.kinesis.model.GetShardIteratorRequest;
import software.amazon.awssdk.services.kinesis.model.ShardIteratorType;

/**
 * Where reading a shard starts: always a concrete place, never "LATEST", so that a batch planned
 * from it reads the same records however often it runs (LATEST is turned into AT_TIMESTAMP of
 * the query's first planning time).
 */
public final class ShardPosition implements Serializable {
    private static final long serialVersionUID = 1L;

    /** The three kinds of start; AFTER_SEQUENCE_NUMBER is the only one a batch ever ends on. */
    public enum Kind { TRIM_HORIZON, AT_TIMESTAMP, AFTER_SEQUENCE_NUMBER }

    private final Kind kind;
    private final String sequenceNumber;
    private final long timestampMillis;

    private ShardPosition(Kind kind, String sequenceNumber, long timestampMillis) {
        this.kind = kind;
        this.sequenceNumber = sequenceNumber;
        this.timestampMillis = timestampMillis;
    }

    public static ShardPosition trimHorizon() {
        return new ShardPosition(Kind.TRIM_HORIZON, null, -1L);
    }

    public static ShardPosition atTimestamp(long millis) {
        return new ShardPosition(Kind.AT_TIMESTAMP, null, millis);
    }

    public static ShardPosition afterSequenceNumber(String sequenceNumber) {
        return new ShardPosition(Kind.AFTER_SEQUENCE_NUMBER, Objects.requireNonNull(sequenceNumber), -1L);
    }

    public Kind kind() {
        return kind;
    }

    public String sequenceNumber() {
        return sequenceNumber;
    }

    /** Fills the iterator request for this position (stream and shard are set by the caller). */
    GetShardIteratorRequest.Builder applyTo(GetShardIteratorRequest.Builder request) {
        switch (kind) {
            case TRIM_HORIZON:
                return request.shardIteratorType(ShardIteratorType.TRIM_HORIZON);
            case AT_TIMESTAMP:
                return request.shardIteratorType(ShardIteratorType.AT_TIMESTAMP)
                        .timestamp(Instant.ofEpochMilli(timestampMillis));
            default:
                return request.shardIteratorType(ShardIteratorType.AFTER_SEQUENCE_NUMBER)
                        .startingSequenceNumber(sequenceNumber);
        }
    }

    ObjectNode toJson() {
        ObjectNode node = JsonNodeFactory.instance.objectNode();
        node.put("type", kind.name());
        if (kind == Kind.AFTER_SEQUENCE_NUMBER) {
            node.put("seq", sequenceNumber);
        } else if (kind == Kind.AT_TIMESTAMP) {
            node.put("ts", timestampMillis);
        }
        return node;
    }

    static ShardPosition fromJson(JsonNode node) {
        Kind kind = Kind.valueOf(node.get("type").asText());
        switch (kind) {
            case TRIM_HORIZON:
                return trimHorizon();
            case AT_TIMESTAMP:
                return atTimestamp(node.get("ts").asLong());
            default:
                return afterSequenceNumber(node.get("seq").asText());
        }
    }

    @Override
    public boolean equals(Object other) {
        if (!(other instanceof ShardPosition)) {
            return false;
        }
        ShardPosition that = (ShardPosition) other;
        return kind == that.kind && timestampMillis == that.timestampMillis
                && Objects.equals(sequenceNumber, that.sequenceNumber);
    }

    @Override
    public int hashCode() {
        return Objects.hash(kind, sequenceNumber, timestampMillis);
    }

    @Override
    public String toString() {
        return toJson().toString();
    }
}
