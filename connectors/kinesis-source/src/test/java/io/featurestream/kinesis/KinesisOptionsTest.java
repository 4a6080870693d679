package io.featurestream.kinesis;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;

import org.junit.jupiter.api.Test;

class KinesisOptionsTest {
    @Test
    void defaultsFollowTheAwsLabsConnector() {
        KinesisOptions options = KinesisOptions.parse(Map.of("kinesis.streamName", "s", "kinesis.region", "eu-west-1"));
        assertEquals("s", options.streamName());
        assertNull(options.streamArn());
        assertEquals(KinesisOptions.StartingPosition.LATEST, options.startingPosition());
        assertEquals(100_000, options.maxRecordsPerShard());
    }

    @Test
    void keysAreCaseInsensitiveAndAwsLabsSpellingsWork() {
        KinesisOptions options = KinesisOptions.parse(Map.of(
                "KINESIS.STREAMNAME", "s",
                "kinesis.startingposition", "AT_TIMESTAMP 2023-08-30T19:00:05-08:00",
                "kinesis.maxFetchRecordsPerShard", "123"));
        assertEquals(KinesisOptions.StartingPosition.AT_TIMESTAMP, options.startingPosition());
        assertEquals(1_693_450_805_000L, options.startingTimestampMillis());
        assertEquals(123, options.maxRecordsPerShard());
        assertEquals(KinesisOptions.StartingPosition.TRIM_HORIZON, KinesisOptions.parse(Map.of(
                "kinesis.streamName", "s", "kinesis.startingPosition", "earliest")).startingPosition());
    }

    @Test
    void arnGivesNameAndRegion() {
        KinesisOptions options = KinesisOptions.parse(Map.of(
                "kinesis.streamName", "arn:aws:kinesis:ap-south-1:123456789012:stream/payments"));
        assertEquals("payments", options.streamName());
        assertEquals("ap-south-1", options.region());
        assertTrue(options.streamArn().startsWith("arn:"));
    }

    @Test
    void badOptionsNameTheOption() {
        InvalidKinesisOptionException missing = assertThrows(InvalidKinesisOptionException.class,
                () -> KinesisOptions.parse(Map.of()));
        assertTrue(missing.getMessage().contains("kinesis.streamName"));
        InvalidKinesisOptionException noTs = assertThrows(InvalidKinesisOptionException.class,
                () -> KinesisOptions.parse(Map.of("kinesis.streamName", "s", "kinesis.startingPosition", "AT_TIMESTAMP")));
        assertTrue(noTs.getMessage().contains("kinesis.startingTimestamp"));
        assertThrows(InvalidKinesisOptionException.class, () -> KinesisOptions.parse(Map.of(
                "kinesis.streamName", "s", "kinesis.maxRecordsPerShard", "0")));
        assertThrows(InvalidKinesisOptionException.class, () -> KinesisOptions.parse(Map.of(
                "kinesis.streamName", "s", "kinesis.consumerType", "SubscribeToShard")));
    }
}
