package io.featurestream.kinesis;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.connector.read.InputPartition;
import org.apache.spark.sql.connector.read.PartitionReaderFactory;
import org.apache.spark.sql.connector.read.streaming.MicroBatchStream;
import org.apache.spark.sql.connector.read.streaming.Offset;
import org.apache.spark.sql.connector.read.streaming.ReadLimit;
import org.apache.spark.sql.connector.read.streaming.ReportsSourceMetrics;
import org.apache.spark.sql.connector.read.streaming.SupportsTriggerAvailableNow;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import software.amazon.awssdk.services.kinesis.KinesisClient;
import software.amazon.awssdk.services.kinesis.model.GetRecordsResponse;
import software.amazon.awssdk.services.kinesis.model.Record;
import software.amazon.awssdk.services.kinesis.model.Shard;

/**
 * Driver side of the source: decides which shards each batch reads and from where.
 *
 * <p>Offset N (written by Spark before batch N runs) holds, per shard, where batch N starts.
 * Batch N's readers record where they stopped ({@link BatchEndStore}); offset N+1 starts every
 * shard there. A new offset is returned only when some shard has data, so an idle stream plans no
 * batches and {@code processAllAvailable}/{@code availableNow} terminate.
 */
final class KinesisMicroBatchStream implements MicroBatchStream, SupportsTriggerAvailableNow, ReportsSourceMetrics {
    private static final Logger LOG = LoggerFactory.getLogger(KinesisMicroBatchStream.class);
    private static final ObjectMapper MAPPER = new ObjectMapper();

    /** What a one-record look at a shard found. */
    private enum Probe { DATA, NOTHING, FINISHED }

    private final KinesisOptions options;
    private final KinesisClient client;
    private final BatchEndStore store;
    private KinesisSourceOffset initial;
    private long availableNowDeadline = -1;

    KinesisMicroBatchStream(KinesisOptions options, String checkpointLocation) {
        this.options = options;
        this.client = KinesisClients.get(options);
        SparkSession spark = SparkSession.active();
        Broadcast<SerializableHadoopConf> conf = JavaSparkContext.fromSparkContext(spark.sparkContext())
                .broadcast(new SerializableHadoopConf(spark.sparkContext().hadoopConfiguration()));
        this.store = new BatchEndStore(checkpointLocation, conf);
    }

    @Override
    public synchronized Offset initialOffset() {
        // computed once per run: LATEST becomes "at the time this query first looked"
        if (initial == null) {
            ShardPosition start;
            switch (options.startingPosition()) {
                case TRIM_HORIZON:
                    start = ShardPosition.trimHorizon();
                    break;
                case AT_TIMESTAMP:
                    start = ShardPosition.atTimestamp(options.startingTimestampMillis());
                    break;
                default:
                    start = ShardPosition.atTimestamp(System.currentTimeMillis());
            }
            Map<String, ShardState> shards = new TreeMap<>();
            for (Shard shard : ShardLister.list(client, options)) {
                shards.put(shard.shardId(), new ShardState(shard.shardId(), parentsOf(shard), start, false));
            }
            initial = new KinesisSourceOffset(-1, shards);
        }
        return initial;
    }

    @Override
    public Offset deserializeOffset(String json) {
        return KinesisSourceOffset.fromJson(json);
    }

    @Override
    public ReadLimit getDefaultReadLimit() {
        return ReadLimit.allAvailable();
    }

    @Override
    public Offset latestOffset() {
        throw new UnsupportedOperationException("Spark calls latestOffset(start, limit) on this source");
    }

    @Override
    public void prepareForTriggerAvailableNow() {
        availableNowDeadline = System.currentTimeMillis();
    }

    @Override
    public Offset latestOffset(Offset startOffset, ReadLimit limit) {
        KinesisSourceOffset start = asKinesis(startOffset);
        Map<String, BatchEnd> ends = new HashMap<>();
        Map<String, ShardState> next = advance(start, ends);
        mergeListing(next);

        boolean hasData = false;
        Set<String> probed = new HashSet<>();
        boolean changed = true;
        while (!hasData && changed) {
            changed = false;
            for (ShardState shard : new KinesisSourceOffset(start.epoch() + 1, next).readyShards()) {
                BatchEnd end = ends.get(shard.shardId());
                if (end != null && !end.caughtUp() && !end.finished() && beforeDeadline(end.lastArrivalMillis())) {
                    hasData = true;
                    break;
                }
                if (end != null && end.caughtUp() && availableNowDeadline >= 0
                        && end.observedAtMillis() >= availableNowDeadline) {
                    // at the tip after the trigger started: all it had before then has been read
                    continue;
                }
                if (!probed.add(shard.shardId())) {
                    continue;
                }
                Probe probe = probe(shard);
                if (probe == Probe.DATA) {
                    hasData = true;
                    break;
                }
                if (probe == Probe.FINISHED) {
                    // closed and read through: its children may be ready now
                    next.put(shard.shardId(), shard.withProgress(shard.position(), true));
                    changed = true;
                }
            }
        }
        return hasData ? new KinesisSourceOffset(start.epoch() + 1, next) : start;
    }

    /** Shard states after {@code start}'s batch: each ready shard moves to its recorded end. */
    private Map<String, ShardState> advance(KinesisSourceOffset start, Map<String, BatchEnd> ends) {
        Map<String, ShardState> next = new TreeMap<>(start.shards());
        if (start.epoch() < 0) {
            return next;
        }
        for (ShardState shard : start.readyShards()) {
            BatchEnd end = store.read(start.epoch(), shard.shardId());
            if (end == null) {
                // no attempt read the whole partition (e.g. only take() ran in foreachBatch): not consumed
                LOG.warn("no recorded end for {} in batch {}; it is read again", shard.shardId(), start.epoch());
                continue;
            }
            ends.put(shard.shardId(), end);
            ShardPosition position = end.lastSequenceNumber() == null
                    ? shard.position() : ShardPosition.afterSequenceNumber(end.lastSequenceNumber());
            next.put(shard.shardId(), shard.withProgress(position, end.finished()));
        }
        return next;
    }

    /** Adds shards born from resharding (read from their start) and drops shards that expired. */
    private void mergeListing(Map<String, ShardState> shards) {
        List<Shard> listed = ShardLister.list(client, options);
        Set<String> listedIds = listed.stream().map(Shard::shardId).collect(Collectors.toSet());
        for (Shard shard : listed) {
            shards.computeIfAbsent(shard.shardId(),
                    id -> new ShardState(id, parentsOf(shard), ShardPosition.trimHorizon(), false));
        }
        for (ShardState state : new ArrayList<>(shards.values())) {
            if (!listedIds.contains(state.shardId())) {
                if (!state.finished()) {
                    LOG.warn("shard {} left the stream (retention) before it was read to its end", state.shardId());
                }
                shards.remove(state.shardId());
            }
        }
    }

    private Probe probe(ShardState shard) {
        ShardFetcher fetcher = new ShardFetcher(client, options, shard.shardId(), shard.position());
        GetRecordsResponse response = fetcher.fetch(1);
        List<Record> records = response.records();
        if (!records.isEmpty()) {
            Record first = records.get(0);
            long arrival = first.approximateArrivalTimestamp() == null
                    ? -1 : first.approximateArrivalTimestamp().toEpochMilli();
            return beforeDeadline(arrival) ? Probe.DATA : Probe.NOTHING;
        }
        if (fetcher.exhausted()) {
            return Probe.FINISHED;
        }
        Long behind = response.millisBehindLatest();
        return behind != null && behind > 0 && availableNowDeadline < 0 ? Probe.DATA : Probe.NOTHING;
    }

    /** Under availableNow, records that arrived after the trigger started wait for the next run. */
    private boolean beforeDeadline(long arrivalMillis) {
        return availableNowDeadline < 0 || arrivalMillis < availableNowDeadline;
    }

    @Override
    public InputPartition[] planInputPartitions(Offset startOffset, Offset endOffset) {
        KinesisSourceOffset end = asKinesis(endOffset);
        return end.readyShards().stream()
                .map(s -> new KinesisInputPartition(options, s.shardId(), s.position(), end.epoch(), store))
                .toArray(InputPartition[]::new);
    }

    @Override
    public PartitionReaderFactory createReaderFactory() {
        return new KinesisPartitionReaderFactory();
    }

    @Override
    public Map<String, String> metrics(Optional<Offset> latestConsumedOffset) {
        Map<String, String> metrics = new HashMap<>();
        if (latestConsumedOffset.isEmpty()) {
            return metrics;
        }
        KinesisSourceOffset consumed = asKinesis(latestConsumedOffset.get());
        if (consumed.epoch() < 0) {
            return metrics;
        }
        ObjectNode behind = MAPPER.createObjectNode();
        long max = -1;
        long records = 0;
        for (ShardState shard : consumed.readyShards()) {
            BatchEnd end = store.read(consumed.epoch(), shard.shardId());
            if (end != null) {
                behind.put(shard.shardId(), end.millisBehindLatest());
                max = Math.max(max, end.millisBehindLatest());
                records += end.records();
            }
        }
        metrics.put("millisBehindLatest", behind.toString());
        metrics.put("maxMillisBehindLatest", Long.toString(max));
        metrics.put("kinesisRecordsRead", Long.toString(records));
        metrics.put("openShards", Long.toString(consumed.shards().values().stream().filter(s -> !s.finished()).count()));
        return metrics;
    }

    @Override
    public void commit(Offset end) {
        store.purgeBefore(asKinesis(end).epoch());
    }

    @Override
    public void stop() {
        // the Kinesis client is shared per JVM (KinesisClients) and outlives one query
    }

    private static KinesisSourceOffset asKinesis(Offset offset) {
        return offset instanceof KinesisSourceOffset
                ? (KinesisSourceOffset) offset : KinesisSourceOffset.fromJson(offset.json());
    }

    private static List<String> parentsOf(Shard shard) {
        List<String> parents = new ArrayList<>(2);
        if (shard.parentShardId() != null) {
            parents.add(shard.parentShardId());
        }
        if (shard.adjacentParentShardId() != null) {
            parents.add(shard.adjacentParentShardId());
        }
        return parents;
    }
}
