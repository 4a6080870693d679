package io.featurestream.tiles;

/** Stored state was written for another slot layout: the feature group changed under a checkpoint. */
public final class IncompatibleStateException extends IllegalStateException {
  private static final long serialVersionUID = 1L;

  IncompatibleStateException(String message) {
    super(message);
  }
}
