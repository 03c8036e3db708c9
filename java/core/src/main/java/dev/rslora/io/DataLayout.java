package dev.rslora.io;

import dev.rslora.io.SafetensorsException.Rule;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Checks that the tensors tile the data buffer exactly: sorted by (begin, end), the first begins
 * at 0, each begins where the previous one ended (no hole, no overlap), and the data buffer ends
 * at the end of the file (8 + N + last end = file size). Each entry's own size was checked by
 * {@link HeaderParser}.
 */
final class DataLayout {
    private DataLayout() {
    }

    /**
     * @param dataStart file offset of the data buffer, 8 + N
     * @param fileSize  bytes in the file
     */
    static void check(List<SafetensorsEntry> entries, long dataStart, long fileSize, String file) throws SafetensorsException {
        List<SafetensorsEntry> sorted = new ArrayList<>(entries);
        sorted.sort(Comparator.comparingLong(SafetensorsEntry::begin).thenComparingLong(SafetensorsEntry::end));
        long expected = 0;
        SafetensorsEntry previous = null;
        for (SafetensorsEntry e : sorted) {
            if (e.begin() > expected) {
                String detail = previous == null
                        ? "the first tensor by offset, " + HeaderParser.quote(e.name()) + ", begins at data offset " + e.begin() + ", not 0"
                        : "tensor " + HeaderParser.quote(e.name()) + " begins at data offset " + e.begin() + " but "
                                + HeaderParser.quote(previous.name()) + " ends at " + expected;
                throw new SafetensorsException(Rule.OFFSET_GAP, file, fileOffset(dataStart, expected),
                        detail + ": a hole of " + (e.begin() - expected) + " bytes");
            }
            if (e.begin() < expected) {
                throw new SafetensorsException(Rule.OFFSET_OVERLAP, file, fileOffset(dataStart, e.begin()),
                        "tensor " + HeaderParser.quote(e.name()) + " [" + e.begin() + ", " + e.end() + ") overlaps "
                                + HeaderParser.quote(previous.name()) + " [" + previous.begin() + ", " + previous.end() + ")");
            }
            expected = e.end();
            previous = e;
        }
        long total = fileOffset(dataStart, expected);
        if (total != fileSize) {
            String declared = total < 0 ? "more than 2^63" : Long.toString(total);
            throw new SafetensorsException(Rule.DATA_SIZE_MISMATCH, file, total < 0 || total > fileSize ? fileSize : total,
                    "8 + N + last end = " + dataStart + " + " + expected + " = " + declared + " bytes but the file holds " + fileSize);
        }
    }

    /** dataStart + relative, or −1 when that overflows. */
    private static long fileOffset(long dataStart, long relative) {
        try {
            return Math.addExact(dataStart, relative);
        } catch (ArithmeticException e) {
            return -1;
        }
    }
}
