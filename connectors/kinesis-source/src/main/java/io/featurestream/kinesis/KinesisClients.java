package io.featurestream.kinesis;

import java.net.URI;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.kinesis.KinesisClient;
import software.amazon.awssdk.services.kinesis.KinesisClientBuilder;

/**
 * One Kinesis client per (region, endpoint) per JVM: building a client costs tens of
 * milliseconds, and every task of every micro-batch needs one.
 */
final class KinesisClients {
    private static final Map<String, KinesisClient> CACHE = new ConcurrentHashMap<>();

    private KinesisClients() {
    }

    static KinesisClient get(KinesisOptions options) {
        return CACHE.computeIfAbsent(options.clientKey(), key -> build(options));
    }

    private static KinesisClient build(KinesisOptions options) {
        KinesisClientBuilder builder = KinesisClient.builder()
                .region(Region.of(options.region()))
                .credentialsProvider(DefaultCredentialsProvider.builder().build())
                .httpClientBuilder(UrlConnectionHttpClient.builder()
                        .connectionTimeout(Duration.ofSeconds(10))
                        .socketTimeout(Duration.ofSeconds(60)));
        if (options.endpointUrl() != null) {
            builder.endpointOverride(URI.create(options.endpointUrl()));
        }
        return builder.build();
    }
}
