package dev.rslora.backend.cuda;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** The run-time choice between JCublas and the java.lang.foreign binding, without a device. */
class CublasBindingTest {
    private static final CublasBinding.Probe JC_OK = CublasBinding.Probe.ok("libcublas.so.12");
    private static final CublasBinding.Probe JC_NO = CublasBinding.Probe.no("UnsatisfiedLinkError: libcublas.so.12: cannot open");
    private static final CublasBinding.Probe FFM_OK = CublasBinding.Probe.ok("libcublas.so.13");
    private static final CublasBinding.Probe FFM_NO = CublasBinding.Probe.no("none of libcublas.so.13, libcublas.so.12 loads");

    /** A probe that must not be run. */
    private static Supplier<CublasBinding.Probe> never(String which) {
        return () -> fail(which + " was probed although its binding cannot be chosen");
    }

    @Test
    void autoPrefersJcublasAndDoesNotLookFurther() {
        CublasBinding.Choice c = CublasBinding.choose("auto", () -> JC_OK, never("java.lang.foreign"));
        assertEquals(CublasBinding.Kind.JCUBLAS, c.kind());
        assertEquals("libcublas.so.12", c.library());
        assertTrue(c.detail().contains("JCublas 12.6.0"), c.detail());
    }

    @Test
    void autoFallsBackToTheForeignBindingAndSaysWhy() {
        CublasBinding.Choice c = CublasBinding.choose(" AUTO ", () -> JC_NO, () -> FFM_OK);
        assertEquals(CublasBinding.Kind.FFM, c.kind());
        assertEquals("libcublas.so.13", c.library());
        assertTrue(c.detail().contains("java.lang.foreign (libcublas.so.13") && c.detail().contains("UnsatisfiedLinkError"), c.detail());
    }

    @Test
    void neitherLoadingIsAnAnswerNotAnError() {
        CublasBinding.Choice c = CublasBinding.choose(null, () -> JC_NO, () -> FFM_NO);
        assertFalse(c.available());
        assertNull(c.kind());
        assertTrue(c.detail().startsWith("no cuBLAS: JCublas 12.6.0: UnsatisfiedLinkError"), c.detail());
        assertTrue(c.detail().contains("java.lang.foreign: none of"), c.detail());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> CublasBinding.open(null, c));
        assertEquals(c.detail(), e.getMessage());
    }

    @Test
    void aForcedBindingIsTheOnlyOneProbed() {
        assertEquals(CublasBinding.Kind.FFM, CublasBinding.choose("ffm", never("JCublas"), () -> FFM_OK).kind());
        assertEquals(CublasBinding.Kind.JCUBLAS, CublasBinding.choose("JCublas", () -> JC_OK, never("java.lang.foreign")).kind());
        CublasBinding.Choice forcedMissing = CublasBinding.choose("jcublas", () -> JC_NO, never("java.lang.foreign"));
        assertFalse(forcedMissing.available());
        assertTrue(forcedMissing.detail().contains("-Drslora.cublas.binding=jcublas"), forcedMissing.detail());
        assertFalse(CublasBinding.choose("ffm", never("JCublas"), () -> FFM_NO).available());
    }

    @Test
    void anUnknownBindingNameIsRefusedWithTheValue() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CublasBinding.choose("cublasLt", () -> JC_OK, () -> FFM_OK));
        assertTrue(e.getMessage().contains("cublasLt") && e.getMessage().contains("auto, jcublas or ffm"), e.getMessage());
    }

    @Test
    void theRealProbesNeverThrowAndAgreeWithTheLoader() {
        CublasBinding.Probe jc = CublasBinding.probeJcublas();
        CublasBinding.Probe ffm = CublasBinding.probeFfm();
        CublasBinding.Choice c = CublasBinding.current();
        System.out.println("cuBLAS here: " + c.detail());
        assertEquals(jc, CublasBinding.probeJcublas(), "probed once per JVM");
        // JCublas 12.6.0's natives need libcublas.so.12: where the loader cannot open it, JCublas must not load
        boolean so12 = loads("libcublas.so.12");
        if (!so12) {
            assertFalse(jc.loads(), "JCublas loaded without libcublas.so.12?");
            assertFalse(jc.failure().isEmpty());
        }
        assertEquals(CublasFfm.findLibrary() != null, ffm.loads());
        assertEquals(jc.loads() || ffm.loads(), c.available(), c.detail());
        assertEquals((jc.loads() ? 1 : 0) + (ffm.loads() ? 1 : 0), CublasBinding.loadable().size(),
                "loadable() lists each binding that loads");
    }

    @Test
    void failureTextIsOneShortLine() {
        String s = CublasBinding.firstLine(new UnsatisfiedLinkError("Error while loading native library \"JCublas2-12.6.0\"\n"
                + "Operating system name: Linux\n" + "x".repeat(500)));
        assertEquals("UnsatisfiedLinkError: Error while loading native library \"JCublas2-12.6.0\"", s);
        assertTrue(CublasBinding.firstLine(new RuntimeException("y".repeat(500))).length() <= 240);
        assertEquals("NoClassDefFoundError", CublasBinding.firstLine(new NoClassDefFoundError()));
        String jcuda = "Error while loading native library \"JCublas2-12.6.0-linux-x86_64\"\nOperating system name: Linux\n"
                + "Stack trace from the attempt to load the library as a resource:\n"
                + "java.lang.UnsatisfiedLinkError: /tmp/libJCublas2-12.6.0-linux-x86_64.so: libcublas.so.12: cannot open shared object file";
        assertEquals("UnsatisfiedLinkError: libcublas.so.12: cannot open shared object file",
                CublasBinding.loaderReason(new UnsatisfiedLinkError(jcuda)));
    }

    private static boolean loads(String lib) {
        try (Arena a = Arena.ofConfined()) {
            SymbolLookup.libraryLookup(lib, a);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }
}
