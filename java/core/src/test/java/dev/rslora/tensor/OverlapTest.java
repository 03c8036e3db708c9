package dev.rslora.tensor;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** {@link Overlap#find}: the first two tensors of a list that share memory, as {@link Tensor#overlaps} sees it. */
class OverlapTest {

    private static Optional<Overlap> pair(int first, int second) {
        return Optional.of(new Overlap(first, second));
    }

    /** Floats [from, from + n) of {@code buffer} as a 1-D F32 tensor. */
    private static Tensor slice(Tensor buffer, long from, long n) {
        return Tensor.wrap(buffer.segment().asSlice(from * 4, n * 4), DType.F32, n);
    }

    @Test
    void emptyListsNullsAndEmptyTensorsShareNothing() {
        try (Arena arena = Arena.ofShared()) {
            Tensor x = Tensor.allocate(arena, DType.F32, 4);
            Tensor empty = Tensor.allocate(arena, DType.F32, 0);
            assertEquals(Optional.empty(), Overlap.find(List.of()));
            assertEquals(Optional.empty(), Overlap.find(List.of(x)));
            assertEquals(Optional.empty(), Overlap.find(Arrays.asList(null, x, null, null)));
            assertEquals(Optional.empty(), Overlap.find(List.of(empty, x, empty, slice(x, 2, 0))), "an empty tensor overlaps nothing");
            assertThrows(NullPointerException.class, () -> Overlap.find(null));
        }
    }

    @Test
    void separateAllocationsAndAdjacentSlicesAreDisjoint() {
        try (Arena arena = Arena.ofShared()) {
            Tensor a = Tensor.allocate(arena, DType.F32, 3);
            Tensor b = Tensor.allocate(arena, DType.BF16, 2, 5);
            Tensor buffer = Tensor.allocate(arena, DType.F32, 12);
            // touching: each slice ends where the next begins; listed out of address order
            List<Tensor> ts = List.of(slice(buffer, 8, 4), a, slice(buffer, 0, 4), b, slice(buffer, 4, 4));
            assertEquals(Optional.empty(), Overlap.find(ts));
        }
    }

    @Test
    void theSameTensorTwiceAndOverlappingSlicesArePaired() {
        try (Arena arena = Arena.ofShared()) {
            Tensor a = Tensor.allocate(arena, DType.F32, 3);
            Tensor b = Tensor.allocate(arena, DType.F32, 3);
            Tensor buffer = Tensor.allocate(arena, DType.F32, 10);
            assertEquals(pair(0, 2), Overlap.find(List.of(a, b, a)));
            assertEquals(pair(1, 2), Overlap.find(List.of(b, a, Tensor.wrap(a.readOnlySegment(), DType.BF16, 6))),
                    "another view (read-only, another dtype) of the same memory");
            assertEquals(pair(0, 2), Overlap.find(List.of(slice(buffer, 0, 5), b, slice(buffer, 4, 6))), "one float in common");
            assertEquals(pair(1, 3), Overlap.find(List.of(a, slice(buffer, 2, 2), b, buffer)), "a slice inside another");
        }
    }

    @Test
    void ofSeveralOverlapsTheOneWithTheSmallestSecondThenFirstIsReported() {
        try (Arena arena = Arena.ofShared()) {
            Tensor buffer = Tensor.allocate(arena, DType.F32, 16);
            Tensor other = Tensor.allocate(arena, DType.F32, 16);
            // [0]: floats 8..12, [1]: other, [2]: floats 0..4, [3]: floats 3..10 (overlaps [0] and [2]), [4]: [1] again
            List<Tensor> ts = List.of(slice(buffer, 8, 4), other, slice(buffer, 0, 4), slice(buffer, 3, 7), other);
            assertEquals(pair(0, 3), Overlap.find(ts));
            // [3] and [4] swapped: other's second listing now comes first
            assertEquals(pair(1, 3), Overlap.find(List.of(ts.get(0), ts.get(1), ts.get(2), ts.get(4), ts.get(3))));
        }
    }

    @Test
    void heapBackedTensorsArePairedByArrayNotByOffset() {
        try (Arena arena = Arena.ofShared()) {
            float[] one = new float[4];
            float[] two = new float[4];
            Tensor h1 = Tensor.wrap(MemorySegment.ofArray(one), DType.F32, 4);
            Tensor h2 = Tensor.wrap(MemorySegment.ofArray(two), DType.F32, 4);
            Tensor h1Tail = Tensor.wrap(MemorySegment.ofArray(one).asSlice(12, 4), DType.F32, 1);
            Tensor n = Tensor.allocate(arena, DType.F32, 4);
            assertEquals(Optional.empty(), Overlap.find(List.of(h1, h2, n)), "the same offsets in two arrays");
            assertEquals(pair(0, 3), Overlap.find(List.of(h1, n, h2, h1Tail)));
            assertEquals(pair(1, 3), Overlap.find(List.of(h1Tail, n, h2, n)), "native and heap tensors together");
        }
    }

    /** Random slices of one buffer: the sort-based search agrees with the pairwise definition. */
    @Test
    void agreesWithThePairwiseDefinitionOnRandomSlices() {
        SplittableRandom rng = new SplittableRandom(20240611L);
        try (Arena arena = Arena.ofShared()) {
            Tensor buffer = Tensor.allocate(arena, DType.F32, 4096);
            for (int trial = 0; trial < 500; trial++) {
                int n = rng.nextInt(1, 12);
                List<Tensor> ts = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    long len = rng.nextInt(0, 300);
                    ts.add(slice(buffer, rng.nextLong(0, 4096 - len + 1), len));
                }
                Optional<Overlap> expected = Optional.empty();
                search:
                for (int second = 1; second < n; second++) {
                    for (int first = 0; first < second; first++) {
                        if (ts.get(second).overlaps(ts.get(first))) {
                            expected = pair(first, second);
                            break search;
                        }
                    }
                }
                assertEquals(expected, Overlap.find(ts), "trial " + trial);
            }
        }
    }

    @Test
    void aPairIsTwoIndicesInOrder() {
        assertThrows(IllegalArgumentException.class, () -> new Overlap(1, 1));
        assertThrows(IllegalArgumentException.class, () -> new Overlap(2, 1));
        assertThrows(IllegalArgumentException.class, () -> new Overlap(-1, 1));
    }
}
