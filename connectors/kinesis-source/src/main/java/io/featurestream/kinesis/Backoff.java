package io.featurestream.kinesis;

import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Supplier;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import software.amazon.awssdk.core.exception.AbortedException;
import software.amazon.awssdk.services.kinesis.model.KmsThrottlingException;
import software.amazon.awssdk.services.kinesis.model.LimitExceededException;
import software.amazon.awssdk.services.kinesis.model.ProvisionedThroughputExceededException;

/**
 * Retries a Kinesis call while it is throttled, with capped exponential backoff and full jitter.
 * Throttling is Kinesis saying "later", not an error: the query must slow down, not fail.
 */
final class Backoff {
    private static final Logger LOG = LoggerFactory.getLogger(Backoff.class);
    private static final long BASE_MS = 100;
    private static final long CAP_MS = 5_000;

    private Backoff() {
    }

    static <T> T retryThrottled(String what, long maxTotalWaitMs, Supplier<T> call) {
        long waited = 0;
        int attempt = 0;
        while (true) {
            try {
                return call.get();
            } catch (AbortedException e) {
                // the SDK's word for "interrupted"; Spark recognises a stop only by InterruptedIOException & co.
                throw interrupted(what, e);
            } catch (ProvisionedThroughputExceededException | LimitExceededException
                    | KmsThrottlingException e) {
                if (waited >= maxTotalWaitMs) {
                    throw new ThrottledTooLongException(what + " throttled for " + waited + " ms", e);
                }
                long ceiling = Math.min(CAP_MS, BASE_MS << Math.min(attempt, 16));
                long sleep = Math.min(ThreadLocalRandom.current().nextLong(ceiling / 2, ceiling + 1),
                        maxTotalWaitMs - waited);
                attempt++;
                if (attempt % 10 == 1) {
                    LOG.warn("{} throttled ({}); backing off {} ms", what, e.getClass().getSimpleName(), sleep);
                }
                sleepQuietly(sleep);
                waited += sleep;
            }
        }
    }

    private static void sleepQuietly(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw interrupted("backing off", e);
        }
    }

    private static UncheckedIOException interrupted(String what, Exception cause) {
        InterruptedIOException io = new InterruptedIOException(what + " interrupted");
        io.initCause(cause);
        return new UncheckedIOException(io);
    }
}
