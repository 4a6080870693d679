package io.featurestream.kinesis;

/** Base of every error this source raises on purpose, so callers can tell ours from Spark's. */
public class KinesisSourceException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public KinesisSourceException(String message) {
        super(message);
    }

    public KinesisSourceException(String message, Throwable cause) {
        super(message, cause);
    }
}
