package dev.rslora.backend.cuda;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LaunchGeometryTest {

    @Test
    void gridsCoverTheOutputWithSixtyFourWideTiles() {
        assertEquals(new LaunchGeometry.Grid(1, 1, 1), LaunchGeometry.down(1, 1));
        assertEquals(new LaunchGeometry.Grid(4, 128, 1), LaunchGeometry.down(8192, 256));
        assertEquals(new LaunchGeometry.Grid(172, 2, 1), LaunchGeometry.forward(127, 11008));
        assertEquals(new LaunchGeometry.Grid(16, 1, 1), LaunchGeometry.forward(64, 1000));
        assertEquals(new LaunchGeometry.Grid(2, 5, 1), LaunchGeometry.backwardVdb(65, 5));
        assertEquals(new LaunchGeometry.Grid(64, 8, 3), LaunchGeometry.backwardDa(4096, 512, 3));
        assertEquals(new LaunchGeometry.Grid(2, 1, 1), LaunchGeometry.backwardDx(7, 96));
        assertEquals(new LaunchGeometry.Grid(1, 172, 1), LaunchGeometry.merge(11008, 1));
        assertEquals(new LaunchGeometry.Grid(1, 1, 1), LaunchGeometry.elementwise(1));
        assertEquals(new LaunchGeometry.Grid(2, 1, 1), LaunchGeometry.elementwise(257));
        assertEquals(new LaunchGeometry.Grid(LaunchGeometry.MAX_ELEMENTWISE_BLOCKS, 1, 1), LaunchGeometry.elementwise(1L << 40));
    }

    @Test
    void gridLimitsAreEnforcedWithTheNumbers() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LaunchGeometry.forward(65_536 * 64 + 1, 64));
        assertTrue(e.getMessage().contains("65536") || e.getMessage().contains("65535"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.down(0, 8));
        assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.elementwise(0));
    }

    @Test
    void rowsPerGroupRespectsTheCapAndCoversN() {
        long seed = 20261128L;
        SplittableRandom rnd = new SplittableRandom(seed);
        for (int trial = 0; trial < 10_000; trial++) {
            int n = 1 + rnd.nextInt(rnd.nextBoolean() ? 300 : 100_000);
            long out = 1 + rnd.nextLong(rnd.nextBoolean() ? 5_000 : 11008L * 512);
            long cap = 1 + rnd.nextLong(1L << 30);
            int rpg = LaunchGeometry.rowsPerGroup(n, out, cap);
            int groups = LaunchGeometry.groups(n, rpg);
            String ctx = "seed " + seed + " trial " + trial + ": n=" + n + " out=" + out + " cap=" + cap + " rpg=" + rpg;
            assertEquals(0, rpg % 64, ctx);
            assertTrue(rpg >= 64, ctx);
            assertTrue((long) groups * rpg >= n && (long) (groups - 1) * rpg < n, ctx);
            assertTrue(groups == 1 || (long) groups * out * 4 <= cap, "workspace over the cap: " + ctx);
            assertTrue(groups <= LaunchGeometry.tiles(n), ctx);
            assertTrue(groups <= LaunchGeometry.MAX_GRID_YZ || rpg * 2L > n, ctx);
        }
    }

    @Test
    void rowsPerGroupExamples() {
        // unlimited cap: one 64-row tile per group
        assertEquals(64, LaunchGeometry.rowsPerGroup(8192, 4096L * 16, 1L << 40));
        // Llama MLP: d_out 11008, r 256, 256 MiB: 23 groups of 384 rows
        int rpg = LaunchGeometry.rowsPerGroup(8192, 11008L * 256, 256L << 20);
        assertEquals(384, rpg);
        assertEquals(22, LaunchGeometry.groups(8192, rpg));
        // a cap below one group's partials: one group
        assertEquals(8192, LaunchGeometry.rowsPerGroup(8192, 1000, 1));
        assertEquals(64, LaunchGeometry.rowsPerGroup(1, 1, 1));
    }

    /** Near 2^31 rows: the groups are counted in long arithmetic, and one group past int32 is an error naming n. */
    @Test
    void rowGroupsNear2To31Rows() {
        int n = Integer.MAX_VALUE / 64 * 64;  // 2^31 - 64: one group of n rows still fits
        assertEquals(n, LaunchGeometry.rowsPerGroup(n, 1L << 30, 1));
        assertEquals(1, LaunchGeometry.groups(n, n));
        assertEquals(2, LaunchGeometry.groups(Integer.MAX_VALUE, n));
        assertEquals(n, LaunchGeometry.mbRowsPerGroup(n, 1, 1L << 30, 1));
        for (int big : new int[] {n + 1, Integer.MAX_VALUE}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.rowsPerGroup(big, 1L << 30, 1));
            assertTrue(e.getMessage().startsWith("n = " + big + " rows"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.mbRowsPerGroup(big, 1, 1L << 30, 1));
            assertTrue(e.getMessage().startsWith("n = " + big + " rows"), e.getMessage());
        }
    }

    @Test
    void memoryBoundSplitsAtTheReferenceShape() {
        long cap = 256L << 20;
        // vdb, r = 64 (rank class 64: 256 d_out columns per block): 16 column chunks × 8 row groups of 1024 rows
        LaunchGeometry.MbSplit v = LaunchGeometry.mbVdb(8192, 4096, 64, 64, cap);
        assertEquals(new LaunchGeometry.Grid(1, 16, 8), v.grid());
        assertEquals(1024, v.rowsPerGroup());
        assertEquals(256, v.colsPerChunk());
        // r = 256 on the rank-64 class: 4 rank chunks, 2 row groups
        assertEquals(new LaunchGeometry.Grid(4, 16, 2), LaunchGeometry.mbVdb(8192, 4096, 256, 64, cap).grid());
        // r = 16 (class 16: 1024 columns per block): 4 chunks × 32 groups of 256 rows
        LaunchGeometry.MbSplit v16 = LaunchGeometry.mbVdb(8192, 4096, 16, 16, cap);
        assertEquals(new LaunchGeometry.Grid(1, 4, 32), v16.grid());
        assertEquals(256, v16.rowsPerGroup());
        // da: 64 column tiles of d_in × 2 row groups
        assertEquals(new LaunchGeometry.Grid(1, 64, 2), LaunchGeometry.mbDa(8192, 4096, 64, 64, cap).grid());
        assertEquals(new LaunchGeometry.Grid(2, 64, 1), LaunchGeometry.mbDa(8192, 4096, 256, 128, cap).grid());
        // down: row tiles × rank chunks
        assertEquals(new LaunchGeometry.Grid(128, 2, 1), LaunchGeometry.mbRows(8192, 512, 256));
        // a one-byte cap: one row group (validate's groups=1)
        assertEquals(1, LaunchGeometry.mbVdb(300, 600, 40, 64, 1).groups());
        assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.mbVdb(8, 8, 8, 128, cap));
    }

    @Test
    void memoryBoundSplitsCoverEveryRowOnceWithinTheGridLimits() {
        SplittableRandom rnd = new SplittableRandom(7);
        for (int trial = 0; trial < 5_000; trial++) {
            int n = 1 + rnd.nextInt(rnd.nextBoolean() ? 500 : 600_037);
            int d = 1 + rnd.nextInt(12_000);
            int r = 1 + rnd.nextInt(512);
            long cap = 1 + rnd.nextLong(1L << 30);
            for (LaunchGeometry.MbSplit s : List.of(LaunchGeometry.mbVdb(n, d, r, r <= 16 ? 16 : 64, cap),
                    LaunchGeometry.mbDa(n, d, r, r <= 16 ? 16 : r <= 64 ? 64 : 128, cap))) {
                String ctx = "trial " + trial + ": n=" + n + " d=" + d + " r=" + r + " cap=" + cap + " " + s;
                assertEquals(0, s.rowsPerGroup() % 64, ctx);
                assertTrue((long) s.groups() * s.rowsPerGroup() >= n && (long) (s.groups() - 1) * s.rowsPerGroup() < n, ctx);
                assertTrue((long) s.chunks() * s.colsPerChunk() >= d && (long) (s.chunks() - 1) * s.colsPerChunk() < d, ctx);
                assertEquals(s.groups(), s.grid().z(), ctx);
                assertEquals(s.chunks(), s.grid().y(), ctx);
                assertTrue((long) s.grid().x() * s.colsPerChunk() > 0, ctx);
            }
        }
    }
}
