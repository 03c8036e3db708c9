package dev.rslora.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded random mutations of a valid file: the reader either refuses the result with a
 * {@link SafetensorsException} or accepts a file that satisfies every invariant. Nothing else
 * (no parser exception, no IndexOutOfBounds, no OutOfMemoryError) may escape.
 */
class SafetensorsFuzzTest {
    private static final long SEED = Long.getLong("rslora.fuzz.seed", 0x5AFE7E45L);
    private static final int MUTATIONS = 5000;
    private static final String[] NUMBERS = {"0", "1", "-1", "-0", "7", "8", "24", "1.5", "1e3", "2E-1",
            "9223372036854775807", "9223372036854775808", "18446744073709551615", "-9223372036854775808",
            "100000000", "4611686018427387904", "00", "0x10", "[]", "\"3\"", "null", "true", "{}", ""};

    private static byte[] validFile(Path dir) throws Exception {
        Path p = dir.resolve("seed.safetensors");
        Random rnd = new Random(SEED);
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt").metadata("é", "ü");
            for (DType d : DType.values()) {
                Tensor t = Tensor.allocate(arena, d, 2, 3);
                for (int i = 0; i < 6; i++) {
                    t.set(i, (float) rnd.nextGaussian());
                }
                w.add("w." + d, t);
            }
            w.addRaw("ids", "I64", new long[]{}, arena.allocate(8));
            w.addRaw("none", "U8", new long[]{0, 5}, arena.allocate(0));
            w.write(p);
        }
        return Files.readAllBytes(p);
    }

    @Test
    void mutatedFilesFailOnlyWithSafetensorsException(@TempDir Path dir) throws Exception {
        byte[] valid = validFile(dir);
        int headerEnd = 8 + (int) ByteBuffer.wrap(valid).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        Random rnd = new Random(SEED);
        Map<SafetensorsException.Rule, Integer> seen = new EnumMap<>(SafetensorsException.Rule.class);
        int accepted = 0;
        long t0 = System.nanoTime();
        for (int i = 0; i < MUTATIONS; i++) {
            int kind = rnd.nextInt(8);
            byte[] m = mutate(valid, headerEnd, kind, rnd);
            try {
                SafetensorsFile f;
                if (i % 100 == 0) {
                    Path p = dir.resolve("m" + i + ".safetensors");
                    Files.write(p, m);
                    try (Arena arena = Arena.ofConfined()) {
                        f = SafetensorsFile.open(p, arena);
                        checkInvariants(f, m.length);
                    }
                    Files.delete(p);
                } else {
                    f = SafetensorsFile.parse(MemorySegment.ofArray(m), "mutation#" + i);
                    checkInvariants(f, m.length);
                }
                accepted++;
            } catch (SafetensorsException e) {
                assertNotNull(e.rule());
                assertTrue(e.getMessage().contains("[" + e.rule() + "]"), e.getMessage());
                seen.merge(e.rule(), 1, Integer::sum);
            } catch (Throwable t) {
                fail("seed " + SEED + ", mutation " + i + " (kind " + kind + ") escaped with " + t
                        + "\nfile: " + HexFormat.of().formatHex(m, 0, Math.min(m.length, 512)), t);
            }
        }
        long ms = (System.nanoTime() - t0) / 1_000_000;
        System.out.println("fuzz seed " + SEED + ": " + MUTATIONS + " mutations in " + ms + " ms, " + accepted
                + " accepted, refusals by rule " + seen);
        assertTrue(seen.size() >= 10, "mutations should exercise many rules, saw " + seen);
        assertTrue(accepted > 0, "some mutations (e.g. of tensor bytes) stay valid");
    }

    /** What any accepted file must satisfy. */
    private static void checkInvariants(SafetensorsFile f, long size) {
        assertEquals(size, f.fileSize());
        assertTrue(f.headerLength() >= 2 && f.headerLength() <= SafetensorsFile.MAX_HEADER_LENGTH);
        List<SafetensorsEntry> sorted = new ArrayList<>(f.entries());
        sorted.sort(Comparator.comparingLong(SafetensorsEntry::begin).thenComparingLong(SafetensorsEntry::end));
        long next = 0;
        for (SafetensorsEntry e : sorted) {
            assertEquals(next, e.begin(), e.toString());
            assertEquals(Math.multiplyExact(e.numel(), (long) e.dtype().byteSize()), e.byteLength(), e.toString());
            assertEquals(e.byteLength(), f.bytes(e.name()).byteSize());
            if (e.dtype().isComputable()) {
                Tensor t = f.tensor(e.name());
                assertEquals(e.numel(), t.numel());
                if (t.numel() > 0) {
                    t.get(t.numel() - 1);
                }
            }
            next = e.end();
        }
        assertEquals(size, f.dataStart() + next);
        assertNotNull(f.metadata());
    }

    private static byte[] mutate(byte[] valid, int headerEnd, int kind, Random rnd) {
        byte[] m = valid.clone();
        switch (kind) {
            case 0 -> { // overwrite 1..4 header bytes with random values
                for (int k = 1 + rnd.nextInt(4); k > 0; k--) {
                    m[8 + rnd.nextInt(headerEnd - 8)] = (byte) rnd.nextInt(256);
                }
            }
            case 1 -> { // flip one bit anywhere (prefix, header or data)
                int at = rnd.nextInt(m.length);
                m[at] ^= (byte) (1 << rnd.nextInt(8));
            }
            case 2 -> m = Arrays.copyOf(m, rnd.nextInt(m.length)); // truncate
            case 3 -> { // rewrite the length prefix
                long n = switch (rnd.nextInt(4)) {
                    case 0 -> rnd.nextLong();
                    case 1 -> rnd.nextInt(m.length + 16);
                    case 2 -> headerEnd - 8 + rnd.nextInt(17) - 8;
                    default -> 1L << (40 + rnd.nextInt(24));
                };
                ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN).putLong(0, n);
            }
            case 4, 5 -> m = spliceNumber(m, headerEnd, rnd); // replace a JSON number, keeping N consistent
            case 6 -> { // insert or delete a header byte without fixing N
                int at = 8 + rnd.nextInt(headerEnd - 8);
                byte[] out = rnd.nextBoolean()
                        ? concat(Arrays.copyOf(m, at), new byte[]{(byte) " {}[],:\"0-"
                                .charAt(rnd.nextInt(10))}, Arrays.copyOfRange(m, at, m.length))
                        : concat(Arrays.copyOf(m, at), Arrays.copyOfRange(m, at + 1, m.length));
                m = out;
            }
            default -> { // append 1..8 random bytes
                byte[] extra = new byte[1 + rnd.nextInt(8)];
                rnd.nextBytes(extra);
                m = concat(m, extra);
            }
        }
        return m;
    }

    private static final Pattern NUMBER = Pattern.compile("-?\\d+");

    /** Replaces one number in the header JSON with another token, then re-pads and fixes N. */
    private static byte[] spliceNumber(byte[] file, int headerEnd, Random rnd) {
        String json = new String(file, 8, headerEnd - 8, StandardCharsets.UTF_8).stripTrailing();
        List<int[]> spans = new ArrayList<>();
        Matcher mt = NUMBER.matcher(json);
        while (mt.find()) {
            spans.add(new int[]{mt.start(), mt.end()});
        }
        int[] s = spans.get(rnd.nextInt(spans.size()));
        String replacement = rnd.nextInt(3) == 0
                ? Long.toString(Long.parseLong(json.substring(s[0], s[1])) + rnd.nextInt(9) - 4)
                : NUMBERS[rnd.nextInt(NUMBERS.length)];
        String spliced = json.substring(0, s[0]) + replacement + json.substring(s[1]);
        byte[] h = spliced.getBytes(StandardCharsets.UTF_8);
        int padded = (h.length + 7) & ~7;
        byte[] header = Arrays.copyOf(h, padded);
        Arrays.fill(header, h.length, padded, (byte) ' ');
        return concat(Crafted.file(header, 0), Arrays.copyOfRange(file, headerEnd, file.length));
    }

    private static byte[] concat(byte[]... parts) {
        int n = 0;
        for (byte[] p : parts) {
            n += p.length;
        }
        byte[] out = new byte[n];
        int at = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }
}
