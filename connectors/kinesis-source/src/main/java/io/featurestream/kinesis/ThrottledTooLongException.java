package io.featurestream.kinesis;

/** Kinesis kept throttling past the configured total wait (kinesis.maxThrottleWaitMs). */
public final class ThrottledTooLongException extends KinesisSourceException {
    private static final long serialVersionUID = 1L;

    public ThrottledTooLongException(String message, Throwable cause) {
        super(message, cause);
    }
}
