package io.featurestream.kinesis;

/** A reader option is missing or malformed; raised on the driver before any batch runs. */
public final class InvalidKinesisOptionException extends KinesisSourceException {
    private static final long serialVersionUID = 1L;

    public InvalidKinesisOptionException(String option, String problem) {
        super("option '" + option + "': " + problem);
    }
}
