package io.featurestream.kinesis;

/**
 * A batch could not be read as the range recorded for it: another attempt of the same batch
 * recorded a different end first, or the recorded records are no longer in the shard. Failing
 * the task is the only safe answer; a retry reads the recorded range.
 */
public final class ReplayMismatchException extends KinesisSourceException {
    private static final long serialVersionUID = 1L;

    public ReplayMismatchException(String message) {
        super(message);
    }
}
