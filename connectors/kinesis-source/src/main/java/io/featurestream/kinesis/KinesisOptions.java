package io.featurestream.kinesis;

import java.io.Serializable;
import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;
import java.util.Locale;
import java.util.Map;

import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/**
 * Reader options, validated once on the driver and shipped to executors as plain values.
 * Keys follow the AWS Labs connector ("kinesis.streamName", "kinesis.region", ...) so a job can
 * switch between the two by changing only the format name.
 */
public final class KinesisOptions implements Serializable {
    private static final long serialVersionUID = 1L;

    public static final String STREAM_NAME = "kinesis.streamName";
    public static final String STREAM_ARN = "kinesis.streamArn";
    public static final String REGION = "kinesis.region";
    public static final String ENDPOINT_URL = "kinesis.endpointUrl";
    public static final String STARTING_POSITION = "kinesis.startingPosition";
    public static final String STARTING_TIMESTAMP = "kinesis.startingTimestamp";
    public static final String MAX_RECORDS_PER_SHARD = "kinesis.maxRecordsPerShard";
    /** The AWS Labs connector's name for the same limit. */
    public static final String MAX_FETCH_RECORDS_PER_SHARD = "kinesis.maxFetchRecordsPerShard";
    public static final String MAX_RECORDS_PER_CALL = "kinesis.maxRecordsPerCall";
    public static final String MAX_EMPTY_POLLS = "kinesis.maxEmptyPolls";
    public static final String MAX_THROTTLE_WAIT_MS = "kinesis.maxThrottleWaitMs";
    public static final String CONSUMER_TYPE = "kinesis.consumerType";

    /** Where a query without a checkpoint starts reading. */
    public enum StartingPosition { TRIM_HORIZON, LATEST, AT_TIMESTAMP }

    private final String streamName;
    private final String streamArn;
    private final String region;
    private final String endpointUrl;
    private final StartingPosition startingPosition;
    private final long startingTimestampMillis;
    private final int maxRecordsPerShard;
    private final int maxRecordsPerCall;
    private final int maxEmptyPolls;
    private final long maxThrottleWaitMs;

    private KinesisOptions(Map<String, String> raw) {
        CaseInsensitiveStringMap opts = new CaseInsensitiveStringMap(raw);
        String name = blankToNull(opts.get(STREAM_NAME));
        String arn = blankToNull(opts.get(STREAM_ARN));
        if (arn == null && name != null && name.startsWith("arn:")) {
            arn = name;
        }
        if (arn != null) {
            // arn:aws:kinesis:<region>:<account>:stream/<name>
            int slash = arn.lastIndexOf('/');
            if (!arn.startsWith("arn:") || slash < 0 || slash == arn.length() - 1) {
                throw new InvalidKinesisOptionException(STREAM_ARN, "not a Kinesis stream ARN: " + arn);
            }
            name = arn.substring(slash + 1);
        }
        if (name == null) {
            throw new InvalidKinesisOptionException(STREAM_NAME, "required (or " + STREAM_ARN + ")");
        }
        this.streamName = name;
        this.streamArn = arn;
        this.region = resolveRegion(blankToNull(opts.get(REGION)), arn);
        this.endpointUrl = blankToNull(opts.get(ENDPOINT_URL));

        String position = opts.getOrDefault(STARTING_POSITION, "LATEST").trim();
        String ts = blankToNull(opts.get(STARTING_TIMESTAMP));
        // the AWS Labs connector's spelling: "AT_TIMESTAMP 2023-08-30T19:00:05Z"
        String[] words = position.split("\\s+", 2);
        if (words.length == 2 && words[0].equalsIgnoreCase("AT_TIMESTAMP")) {
            position = words[0];
            ts = words[1];
        }
        position = position.toUpperCase(Locale.ROOT);
        if (position.equals("EARLIEST")) {
            position = "TRIM_HORIZON";
        }
        try {
            this.startingPosition = StartingPosition.valueOf(position);
        } catch (IllegalArgumentException e) {
            throw new InvalidKinesisOptionException(STARTING_POSITION,
                    "expected TRIM_HORIZON, LATEST or AT_TIMESTAMP, got " + position);
        }
        if (startingPosition == StartingPosition.AT_TIMESTAMP) {
            if (ts == null) {
                throw new InvalidKinesisOptionException(STARTING_TIMESTAMP, "required with AT_TIMESTAMP");
            }
            this.startingTimestampMillis = parseTimestamp(ts);
        } else {
            this.startingTimestampMillis = -1L;
        }
        this.maxRecordsPerShard = positiveInt(opts, MAX_RECORDS_PER_SHARD,
                positiveInt(opts, MAX_FETCH_RECORDS_PER_SHARD, 100_000, Integer.MAX_VALUE), Integer.MAX_VALUE);
        this.maxRecordsPerCall = positiveInt(opts, MAX_RECORDS_PER_CALL, 10_000, 10_000);
        this.maxEmptyPolls = positiveInt(opts, MAX_EMPTY_POLLS, 100, 100_000);
        this.maxThrottleWaitMs = positiveInt(opts, MAX_THROTTLE_WAIT_MS, 600_000, Integer.MAX_VALUE);

        String consumer = opts.getOrDefault(CONSUMER_TYPE, "GetRecords");
        if (!consumer.equalsIgnoreCase("GetRecords")) {
            throw new InvalidKinesisOptionException(CONSUMER_TYPE,
                    "only GetRecords (polling) is supported by this source, got " + consumer);
        }
    }

    public static KinesisOptions parse(Map<String, String> raw) {
        return new KinesisOptions(raw);
    }

    private static String resolveRegion(String option, String arn) {
        if (option != null) {
            return option;
        }
        if (arn != null) {
            String[] parts = arn.split(":", 6);
            if (parts.length == 6 && !parts[3].isEmpty()) {
                return parts[3];
            }
        }
        for (String env : new String[] {"AWS_REGION", "AWS_DEFAULT_REGION"}) {
            String value = blankToNull(System.getenv(env));
            if (value != null) {
                return value;
            }
        }
        return "us-east-1";
    }

    private static long parseTimestamp(String value) {
        try {
            return Long.parseLong(value);
        } catch (NumberFormatException ignored) {
            // not epoch millis: try ISO-8601 below
        }
        try {
            return OffsetDateTime.parse(value).toInstant().toEpochMilli();
        } catch (DateTimeParseException e) {
            throw new InvalidKinesisOptionException(STARTING_TIMESTAMP,
                    "expected epoch milliseconds or an ISO-8601 instant, got " + value);
        }
    }

    private static int positiveInt(CaseInsensitiveStringMap opts, String key, int dflt, int max) {
        String value = blankToNull(opts.get(key));
        if (value == null) {
            return dflt;
        }
        int parsed;
        try {
            parsed = Integer.parseInt(value.trim());
        } catch (NumberFormatException e) {
            throw new InvalidKinesisOptionException(key, "expected an integer, got " + value);
        }
        if (parsed <= 0 || parsed > max) {
            throw new InvalidKinesisOptionException(key, "must be between 1 and " + max + ", got " + parsed);
        }
        return parsed;
    }

    private static String blankToNull(String value) {
        return value == null || value.isBlank() ? null : value.trim();
    }

    public String streamName() {
        return streamName;
    }

    /** The stream's ARN when the user gave one, else null (requests then name the stream). */
    public String streamArn() {
        return streamArn;
    }

    public String region() {
        return region;
    }

    public String endpointUrl() {
        return endpointUrl;
    }

    public StartingPosition startingPosition() {
        return startingPosition;
    }

    public long startingTimestampMillis() {
        return startingTimestampMillis;
    }

    public int maxRecordsPerShard() {
        return maxRecordsPerShard;
    }

    public int maxRecordsPerCall() {
        return maxRecordsPerCall;
    }

    public int maxEmptyPolls() {
        return maxEmptyPolls;
    }

    public long maxThrottleWaitMs() {
        return maxThrottleWaitMs;
    }

    /** Identity of the client these options build; executors share one client per identity. */
    String clientKey() {
        return region + "|" + (endpointUrl == null ? "" : endpointUrl);
    }
}
