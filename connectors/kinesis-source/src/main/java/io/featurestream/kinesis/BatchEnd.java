package io.featurestream.kinesis;

import java.io.IOException;
import java.io.Serializable;
import java.util.Objects;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * Where one shard's part of one batch ended, as its first reader decided it. Every later attempt
 * of the same batch reads up to exactly {@link #lastSequenceNumber()}; the driver starts the next
 * batch after it. The remaining fields are observations for planning and metrics.
 */
public final class BatchEnd implements Serializable {
    private static final long serialVersionUID = 1L;
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private final String lastSequenceNumber;
    private final boolean finished;
    private final boolean caughtUp;
    private final long records;
    private final long millisBehindLatest;
    private final long lastArrivalMillis;
    private final long observedAtMillis;

    /**
     * @param lastSequenceNumber last Kinesis record of the batch (inclusive), null if none was read
     * @param finished the shard is closed and this batch read through its last record
     * @param caughtUp the last GetRecords returned a short page with millisBehindLatest 0: the tip
     * @param observedAtMillis wall-clock time of that last GetRecords
     */
    public BatchEnd(String lastSequenceNumber, boolean finished, boolean caughtUp, long records,
            long millisBehindLatest, long lastArrivalMillis, long observedAtMillis) {
        this.lastSequenceNumber = lastSequenceNumber;
        this.finished = finished;
        this.caughtUp = caughtUp;
        this.records = records;
        this.millisBehindLatest = millisBehindLatest;
        this.lastArrivalMillis = lastArrivalMillis;
        this.observedAtMillis = observedAtMillis;
    }

    public String lastSequenceNumber() {
        return lastSequenceNumber;
    }

    public boolean finished() {
        return finished;
    }

    public boolean caughtUp() {
        return caughtUp;
    }

    public long records() {
        return records;
    }

    public long millisBehindLatest() {
        return millisBehindLatest;
    }

    public long lastArrivalMillis() {
        return lastArrivalMillis;
    }

    public long observedAtMillis() {
        return observedAtMillis;
    }

    /** Same range read: what a second attempt of the batch must agree on. */
    boolean sameRange(BatchEnd other) {
        return Objects.equals(lastSequenceNumber, other.lastSequenceNumber) && finished == other.finished;
    }

    String toJson() {
        ObjectNode node = MAPPER.createObjectNode();
        if (lastSequenceNumber != null) {
            node.put("lastSeq", lastSequenceNumber);
        }
        node.put("finished", finished);
        node.put("caughtUp", caughtUp);
        node.put("records", records);
        node.put("millisBehindLatest", millisBehindLatest);
        node.put("lastArrival", lastArrivalMillis);
        node.put("observedAt", observedAtMillis);
        return node.toString();
    }

    static BatchEnd fromJson(String json) {
        try {
            JsonNode node = MAPPER.readTree(json);
            JsonNode seq = node.get("lastSeq");
            return new BatchEnd(seq == null ? null : seq.asText(), node.get("finished").asBoolean(),
                    node.get("caughtUp").asBoolean(), node.get("records").asLong(),
                    node.get("millisBehindLatest").asLong(), node.get("lastArrival").asLong(),
                    node.get("observedAt").asLong());
        } catch (IOException | RuntimeException e) {
            throw new KinesisSourceException("unreadable batch end record: " + json, e);
        }
    }
}
