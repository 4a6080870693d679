package io.featurestream.kinesis;

import org.apache.spark.sql.connector.read.InputPartition;

/** One shard's part of one batch: the shard, where the batch starts in it, and the batch's epoch. */
final class KinesisInputPartition implements InputPartition {
    private static final long serialVersionUID = 1L;

    private final KinesisOptions options;
    private final String shardId;
    private final ShardPosition start;
    private final long epoch;
    private final BatchEndStore store;

    KinesisInputPartition(KinesisOptions options, String shardId, ShardPosition start, long epoch,
            BatchEndStore store) {
        this.options = options;
        this.shardId = shardId;
        this.start = start;
        this.epoch = epoch;
        this.store = store;
    }

    KinesisOptions options() {
        return options;
    }

    String shardId() {
        return shardId;
    }

    ShardPosition start() {
        return start;
    }

    long epoch() {
        return epoch;
    }

    BatchEndStore store() {
        return store;
    }
}
