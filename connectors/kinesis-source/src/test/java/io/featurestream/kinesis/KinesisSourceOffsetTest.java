package io.featurestream.kinesis;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;

import org.junit.jupiter.api.Test;

class KinesisSourceOffsetTest {
    private static ShardState shard(String id, boolean finished, String... parents) {
        return new ShardState(id, List.of(parents), ShardPosition.trimHorizon(), finished);
    }

    private static List<String> ready(ShardState... shards) {
        Map<String, ShardState> map = new TreeMap<>();
        for (ShardState s : shards) {
            map.put(s.shardId(), s);
        }
        return new KinesisSourceOffset(0, map).readyShards().stream()
                .map(ShardState::shardId).collect(Collectors.toList());
    }

    @Test
    void jsonRoundTripIsExactAndOrderIndependent() {
        Map<String, ShardState> shards = new TreeMap<>();
        shards.put("s-2", new ShardState("s-2", List.of("s-1", "s-0"), ShardPosition.afterSequenceNumber("4967"), false));
        shards.put("s-0", new ShardState("s-0", List.of(), ShardPosition.atTimestamp(1_700_000_000_123L), true));
        shards.put("s-1", new ShardState("s-1", List.of(), ShardPosition.trimHorizon(), false));
        KinesisSourceOffset offset = new KinesisSourceOffset(7, shards);
        String json = offset.json();
        assertEquals("{\"epoch\":7,\"shards\":{"
                + "\"s-0\":{\"type\":\"AT_TIMESTAMP\",\"ts\":1700000000123,\"finished\":true},"
                + "\"s-1\":{\"type\":\"TRIM_HORIZON\"},"
                + "\"s-2\":{\"type\":\"AFTER_SEQUENCE_NUMBER\",\"seq\":\"4967\",\"parents\":[\"s-0\",\"s-1\"]}}}", json);
        assertEquals(offset, KinesisSourceOffset.fromJson(json));
        assertEquals(json, KinesisSourceOffset.fromJson(json).json());
    }

    @Test
    void childrenWaitForEveryParentToFinish() {
        // split: s-0 -> s-2, s-3
        assertEquals(List.of("s-0", "s-1"), ready(shard("s-0", false), shard("s-1", false),
                shard("s-2", false, "s-0"), shard("s-3", false, "s-0")));
        assertEquals(List.of("s-1", "s-2", "s-3"), ready(shard("s-0", true), shard("s-1", false),
                shard("s-2", false, "s-0"), shard("s-3", false, "s-0")));
        // merge: s-0 + s-1 -> s-2; one parent finished is not enough
        assertEquals(List.of("s-1"), ready(shard("s-0", true), shard("s-1", false), shard("s-2", false, "s-0", "s-1")));
        // a parent gone from the stream (retention) no longer blocks its child
        assertEquals(List.of("s-2"), ready(shard("s-2", false, "s-0")));
    }

    @Test
    void unreadableOffsetIsANamedError() {
        assertThrows(KinesisSourceException.class, () -> KinesisSourceOffset.fromJson("{\"epoch\":1}"));
    }
}
