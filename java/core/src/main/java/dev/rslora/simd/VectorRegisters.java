package dev.rslora.simd;

/**
 * How many vector registers the JIT allocates: 32 on aarch64 (NEON, SVE) and on x86 where HotSpot
 * uses AVX-512 ({@code UseAVX} 3, EVEX code: xmm/ymm/zmm 0–31, whatever the vector width), else 16
 * on x86 ({@code UseAVX} 0–2: SSE or VEX code, also on an AVX-512 machine run with
 * {@code -XX:UseAVX=2}). The cpu backend sizes its register tiles by it (a tile that needs more
 * registers than this keeps accumulators on the stack). Decided once: on x86 from HotSpot's
 * {@code UseAVX} flag ({@code jdk.management}), 16 where the JVM does not report it; 32 on other
 * architectures.
 */
public final class VectorRegisters {
    /** 32 or 16. */
    public static final int COUNT = count(System.getProperty("os.arch", ""), useAvx());

    private VectorRegisters() {
    }

    /** The count for an architecture ({@code os.arch}) and HotSpot's UseAVX value (null: not reported). */
    public static int count(String arch, Integer useAvx) {
        boolean x86 = arch.equals("amd64") || arch.equals("x86_64");
        if (!x86) {
            return 32;
        }
        return useAvx != null && useAvx >= 3 ? 32 : 16;
    }

    private static Integer useAvx() {
        String v = HotSpotFlags.value("UseAVX");
        return v == null ? null : Integer.valueOf(v);
    }
}
