package dev.rslora.backend.cpu;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * How rows are cut into chunks: MC rows while the packed W stays cached, MC_STREAMED rows when it
 * is larger, whole tiles, chunks a multiple of the workers and at least two per worker where
 * MC-row chunks allow.
 */
class SplitTest {
    private static final long CACHED = 4L << 20;      // d = 1024: 4 MB of packed W
    private static final long STREAMED = 64L << 20;   // d = 4096: 64 MB

    @Test
    void aCachedWKeepsChunksOfMcRows() {
        assertEquals(Split.padRows(64), Split.chunkRows(512, 2, CACHED));
        assertEquals(Split.padRows(64), Split.chunkRows(2048, 2, CACHED));
        assertEquals(Split.padRows(32), Split.chunkRows(64, 2, CACHED), "one chunk per worker");
        assertEquals(Split.chunkRows(512, 2, CACHED), Split.chunkRows(512, 2, Split.W_CACHED_BYTES), "the limit itself is cached");
    }

    @Test
    void aStreamedWGetsLargerChunksButAtLeastTwoPerWorker() {
        assertEquals(Split.padRows(256), Split.chunkRows(2048, 2, STREAMED), "8 chunks of 256 rows");
        assertEquals(Split.padRows(128), Split.chunkRows(512, 2, STREAMED), "4 chunks, not 2 of 256 rows");
        assertEquals(Split.padRows(64), Split.chunkRows(512, 4, STREAMED), "8 chunks for 4 workers");
        assertEquals(Split.padRows(32), Split.chunkRows(64, 2, STREAMED), "as few rows as with a cached W");
        assertEquals(Split.padRows(256), Split.chunkRows(4096, 1, STREAMED));
    }

    @Test
    void everySplitIsWholeTilesWithinItsLimitAndCoversAllRows() {
        for (int workers = 1; workers <= 5; workers++) {
            for (int n = 1; n <= 3000; n += 37) {
                for (long bytes : new long[] {CACHED, STREAMED}) {
                    int rows = Split.chunkRows(n, workers, bytes);
                    int limit = bytes > Split.W_CACHED_BYTES ? Split.MC_STREAMED : Split.MC;
                    String ctx = "n=" + n + " workers=" + workers + " W bytes=" + bytes + ": " + rows + " rows";
                    assertEquals(0, rows % MicroKernel.MR, ctx);
                    assertTrue(rows >= MicroKernel.MR && rows <= limit, ctx);
                    int chunks = (n + rows - 1) / rows;
                    int mcChunks = (n + Split.MC - 1) / Split.MC;
                    // never fewer chunks than MC-row chunks would give, up to two per worker
                    assertTrue(chunks >= Math.min(mcChunks, 2 * workers) || rows == MicroKernel.MR, ctx);
                }
            }
        }
    }
}
