package io.featurestream.tiles;

/** The engine configuration handed over from Python does not fit the input columns. */
public final class InvalidEngineConfigException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  InvalidEngineConfigException(String message) {
    super(message);
  }
}
