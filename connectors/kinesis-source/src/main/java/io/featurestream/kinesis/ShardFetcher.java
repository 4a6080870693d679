package io.featurestream.kinesis;

import java.util.List;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import software.amazon.awssdk.services.kinesis.KinesisClient;
import software.amazon.awssdk.services.kinesis.model.ExpiredIteratorException;
import software.amazon.awssdk.services.kinesis.model.GetRecordsRequest;
import software.amazon.awssdk.services.kinesis.model.GetRecordsResponse;
import software.amazon.awssdk.services.kinesis.model.GetShardIteratorRequest;
import software.amazon.awssdk.services.kinesis.model.Record;

/**
 * Pages through one shard from a start position with GetRecords. Owns the shard iterator: gets
 * it lazily, re-acquires it after the last record returned when it expires (iterators live five
 * minutes), and backs off while throttled.
 */
final class ShardFetcher {
    private static final Logger LOG = LoggerFactory.getLogger(ShardFetcher.class);

    private final KinesisClient client;
    private final KinesisOptions options;
    private final String shardId;
    private final ShardPosition start;
    private String iterator;
    private String lastSequenceNumber;
    private boolean exhausted;

    ShardFetcher(KinesisClient client, KinesisOptions options, String shardId, ShardPosition start) {
        this.client = client;
        this.options = options;
        this.shardId = shardId;
        this.start = start;
    }

    /** True once the shard is closed and its last record has been returned. */
    boolean exhausted() {
        return exhausted;
    }

    /** One GetRecords page of at most {@code limit} records; call only while not exhausted. */
    GetRecordsResponse fetch(int limit) {
        if (exhausted) {
            throw new IllegalStateException("shard " + shardId + " is exhausted");
        }
        while (true) {
            if (iterator == null) {
                iterator = acquireIterator();
            }
            GetRecordsRequest request = GetRecordsRequest.builder().shardIterator(iterator).limit(limit).build();
            try {
                GetRecordsResponse response = Backoff.retryThrottled("GetRecords " + shardId,
                        options.maxThrottleWaitMs(), () -> client.getRecords(request));
                List<Record> records = response.records();
                if (!records.isEmpty()) {
                    lastSequenceNumber = records.get(records.size() - 1).sequenceNumber();
                }
                iterator = response.nextShardIterator();
                exhausted = iterator == null;
                return response;
            } catch (ExpiredIteratorException e) {
                LOG.info("iterator of {} expired; re-acquiring after {}", shardId, lastSequenceNumber);
                iterator = null;
            }
        }
    }

    private String acquireIterator() {
        ShardPosition from = lastSequenceNumber == null ? start : ShardPosition.afterSequenceNumber(lastSequenceNumber);
        GetShardIteratorRequest.Builder request = GetShardIteratorRequest.builder().shardId(shardId);
        if (options.streamArn() != null) {
            request.streamARN(options.streamArn());
        } else {
            request.streamName(options.streamName());
        }
        GetShardIteratorRequest built = from.applyTo(request).build();
        return Backoff.retryThrottled("GetShardIterator " + shardId, options.maxThrottleWaitMs(),
                () -> client.getShardIterator(built)).shardIterator();
    }
}
