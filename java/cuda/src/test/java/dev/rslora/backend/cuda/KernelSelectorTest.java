package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The family selector ({@link KernelSelector}: auto picks the fastest family validated on
 * the architecture, explicit families fall back v3 → v4 → v1 with reasons, shapes TMA/cp.async cannot
 * take are refused), on a synthetic table and, where the repository has it, on the real one.
 */
class KernelSelectorTest {
    /** v1 and v2 as in the table (validated on sm90), v3 (sm90a) and v4 with their own GEMMs, not validated. */
    static final String TABLE = """
            // a comment, then rows
            RS_KERNEL(v1, down,    bf16, rslora_lora_down_v1_bf16,         256, 0, 1x1x1, sm80, main, tiles_r_n,    0, sm90)
            RS_KERNEL(v1, forward, bf16, rslora_lora_forward_v1_bf16,      256, 0, 1x1x1, sm80, main, tiles_dout_n, 0, sm90)
            RS_KERNEL(v1, vdb,     bf16, rslora_lora_backward_vdb_v1_bf16, 256, 0, 1x1x1, sm80, main, tiles_r_groups, 0, sm90)
            RS_KERNEL(v1, reduce,  any,  rslora_reduce_groups_v1,          256, 0, 1x1x1, sm80, main, elementwise,  0, sm90)
            RS_KERNEL(v1, da,      bf16, rslora_lora_backward_da_v1_bf16,  256, 0, 1x1x1, sm80, main, tiles_din_r_groups, 0, sm90)
            RS_KERNEL(v1, dx,      bf16, rslora_lora_backward_dx_v1_bf16,  256, 0, 1x1x1, sm80, main, tiles_din_n,  0, sm90)
            RS_KERNEL(v1, down,    f32,  rslora_lora_down_v1_f32,          256, 0, 1x1x1, sm80, main, tiles_r_n,    0, sm90)
            RS_KERNEL(v1, forward, f32,  rslora_lora_forward_v1_f32,       256, 0, 1x1x1, sm80, main, tiles_dout_n, 0, sm90)
            RS_KERNEL(v1, vdb,     f32,  rslora_lora_backward_vdb_v1_f32,  256, 0, 1x1x1, sm80, main, tiles_r_groups, 0, sm90)
            RS_KERNEL(v1, da,      f32,  rslora_lora_backward_da_v1_f32,   256, 0, 1x1x1, sm80, main, tiles_din_r_groups, 0, sm90)
            RS_KERNEL(v1, dx,      f32,  rslora_lora_backward_dx_v1_f32,   256, 0, 1x1x1, sm80, main, tiles_din_n,  0, sm90)

            RS_KERNEL(v2, down,    bf16, rslora_lora_down_v1_bf16,         256, 0, 1x1x1, sm80, main, tiles_r_n,    0, sm90)
            RS_KERNEL(v2, forward, bf16, rslora_lora_forward_v2_bf16,      128, 0, 1x1x1, sm80, main, tiles_dout_n, 0, sm90)
            RS_KERNEL(v2, vdb,     bf16, rslora_lora_backward_vdb_v1_bf16, 256, 0, 1x1x1, sm80, main, tiles_r_groups, 0, sm90)
            RS_KERNEL(v2, reduce,  any,  rslora_reduce_groups_v1,          256, 0, 1x1x1, sm80, main, elementwise,  0, sm90)
            RS_KERNEL(v2, da,      bf16, rslora_lora_backward_da_v1_bf16,  256, 0, 1x1x1, sm80, main, tiles_din_r_groups, 0, sm90)
            RS_KERNEL(v2, dx,      bf16, rslora_lora_backward_dx_v2_bf16,  128, 0, 1x1x1, sm80, main, tiles_din_n,  0, sm90)

            RS_KERNEL(v3, down,    bf16, rslora_lora_down_v1_bf16,         256, 0, 1x1x1, sm80, main, tiles_r_n,    0, sm90)
            RS_KERNEL(v3, forward, bf16, rslora_lora_forward_v3_bf16,      384, 215040, 1x1x1, sm90a, sm90a, persistent_dout_n, 0, none)
            RS_KERNEL(v3, vdb,     bf16, rslora_lora_backward_vdb_v1_bf16, 256, 0, 1x1x1, sm80, main, tiles_r_groups, 0, sm90)
            RS_KERNEL(v3, reduce,  any,  rslora_reduce_groups_v1,          256, 0, 1x1x1, sm80, main, elementwise,  0, sm90)
            RS_KERNEL(v3, da,      bf16, rslora_lora_backward_da_v1_bf16,  256, 0, 1x1x1, sm80, main, tiles_din_r_groups, 0, sm90)
            RS_KERNEL(v3, dx,      bf16, rslora_lora_backward_dx_v3_bf16,  384, 223232, 1x1x1, sm90a, sm90a, persistent_din_n, 0, none)

            RS_KERNEL(v4, down,    bf16, rslora_lora_down_v1_bf16,         256, 0, 1x1x1, sm80, main, tiles_r_n,    0, sm90)
            RS_KERNEL(v4, forward, bf16, rslora_lora_forward_v4_bf16,      256, 98304, 1x1x1, sm80, main, flat_dout_128x256, 0, none)
            RS_KERNEL(v4, vdb,     bf16, rslora_lora_backward_vdb_v1_bf16, 256, 0, 1x1x1, sm80, main, tiles_r_groups, 0, sm90)
            RS_KERNEL(v4, reduce,  any,  rslora_reduce_groups_v1,          256, 0, 1x1x1, sm80, main, elementwise,  0, sm90)
            RS_KERNEL(v4, da,      bf16, rslora_lora_backward_da_v1_bf16,  256, 0, 1x1x1, sm80, main, tiles_din_r_groups, 0, sm90)
            RS_KERNEL(v4, dx,      bf16, rslora_lora_backward_dx_v4_bf16,  256, 98304, 1x1x1, sm80, main, flat_din_128x256, 0, none)
            """;
    static final KernelSelector.Shape LLAMA = new KernelSelector.Shape(8192, 4096, 4096, 16, true);
    static final Predicate<KernelTable.Row> ALL = r -> true;

    private static KernelTable table() {
        return parse(TABLE, "synthetic");
    }

    private static KernelTable parse(String text, String source) {
        return KernelTable.parse(text.lines().toList(), source);
    }

    @Test
    void rowsRunWhereTheirArchitectureAllows() {
        KernelTable t = table();
        KernelTable.Row fwd = t.find("v3", "forward", "bf16", 16).orElseThrow();
        assertEquals(215040, fwd.smem());
        assertTrue(KernelSelector.runsOn(fwd, 9, 0) && !KernelSelector.runsOn(fwd, 8, 0) && !KernelSelector.runsOn(fwd, 10, 0),
                "sm_90a code runs on 9.0 only");
        assertTrue(KernelSelector.runsOn(t.find("v1", "down", "f32", 16).orElseThrow(), 12, 0),
                "sm80 rows (with compute_90 PTX) run on newer GPUs");
        assertEquals("sm90", KernelSelector.smArch(9, 0));
        assertEquals("bf16", KernelSelector.dtypeToken(DType.BF16));
    }

    @Test
    void autoPicksTheFastestFamilyValidatedOnThisArchitecture() {
        KernelTable t = table();
        // H200: v2 is validated on sm90, v3 and v4 not yet
        KernelSelector.Selection h200 = KernelSelector.select("auto", t, 9, 0, DType.BF16, LLAMA, ALL, Map.of());
        assertEquals("v2", h200.family(), h200.toString());
        assertEquals("not validated on sm90", h200.skipped().get("v3"));
        // an A100: nothing validated there yet, so the oracle; v3 is sm_90a code
        KernelSelector.Selection a100 = KernelSelector.select(null, t, 8, 0, DType.BF16, LLAMA, ALL, Map.of());
        assertEquals("v1", a100.family());
        assertTrue(a100.reason().contains("no family validated on sm80"), a100.reason());
        assertTrue(a100.skipped().get("v3").contains("is sm90a code, not for compute capability 8.0"), a100.skipped().toString());
        // f32: only v1 has f32 rows here
        assertEquals("v1", KernelSelector.select("auto", t, 9, 0, DType.F32, LLAMA, ALL, Map.of()).family());
        // once v3 and v4 are validated on sm90, measured times decide; unmeasured, the expected order v3 > v4 > v2
        KernelTable validated = parse(TABLE.replace(", 0, none)", ", 0, sm90)"), "validated");
        assertEquals("v3", KernelSelector.select("auto", validated, 9, 0, DType.BF16, LLAMA, ALL, Map.of()).family());
        KernelSelector.Selection measured = KernelSelector.select("auto", validated, 9, 0, DType.BF16, LLAMA, ALL,
                Map.of("v3", 0.90, "v4", 0.80, "v2", 7.5));
        assertEquals("v4", measured.family(), measured.toString());
        assertTrue(measured.reason().startsWith("auto: fastest measured"), measured.reason());
    }

    @Test
    void shapesTmaCannotTakeFallBackToV4ThenV1NeverToAWrongAnswer() {
        KernelTable t = parse(TABLE.replace(", 0, none)", ", 0, sm90)"), "validated");
        // d_in = 1001: 2002-byte rows; neither TMA nor cp.async can take them
        KernelSelector.Shape odd = new KernelSelector.Shape(8192, 1001, 4096, 16, true);
        KernelSelector.Selection v3 = KernelSelector.select("v3", t, 9, 0, DType.BF16, odd, ALL, Map.of());
        assertEquals("v1", v3.family(), v3.toString());
        assertEquals("v3: d_in = 1001 is not a multiple of 8 (TMA row stride must be a multiple of 16 bytes)", v3.skipped().get("v3"));
        assertEquals("rslora_lora_forward_v4: d_in = 1001 is not a positive multiple of 8 (16-byte rows for cp.async)",
                v3.skipped().get("v4"));
        assertTrue(v3.reason().contains("fallback"));
        // an unaligned base: v3 and v4 refuse; auto picks v2
        KernelSelector.Shape unaligned = new KernelSelector.Shape(8192, 4096, 4096, 16, false);
        assertEquals("v2", KernelSelector.select("auto", t, 9, 0, DType.BF16, unaligned, ALL, Map.of()).family());
        // v3 asked for on an sm_80 device: v4
        KernelSelector.Selection onA100 = KernelSelector.select("3", t, 8, 0, DType.BF16, LLAMA, ALL, Map.of());
        assertEquals("v4", onA100.family(), onA100.toString());
        // a family the host cannot launch yet is passed over with that reason
        Predicate<KernelTable.Row> noV3 = r -> !r.name().contains("_v3_");
        KernelSelector.Selection notYet = KernelSelector.select("v3", t, 9, 0, DType.BF16, LLAMA, noV3, Map.of());
        assertEquals("v4", notYet.family());
        assertEquals("the Java host does not launch rslora_lora_forward_v3_bf16 yet", notYet.skipped().get("v3"));
        // f32 asked of v4: its GEMMs are 16-bit only... here v4 simply has no f32 rows
        assertEquals("v1", KernelSelector.select("v4", t, 9, 0, DType.F32, LLAMA, ALL, Map.of()).family());
        assertEquals("v3 (TMA) has no f32 kernels", KernelSelector.refusal("rslora_lora_forward_v3_f32", DType.F32, LLAMA));
        assertThrows(IllegalArgumentException.class, () -> KernelSelector.requested("fastest"));
        IllegalStateException none = assertThrows(IllegalStateException.class,
                () -> KernelSelector.select("v2", t, 7, 5, DType.BF16, LLAMA, ALL, Map.of()));
        assertTrue(none.getMessage().contains("not for compute capability 7.5"), none.getMessage());
    }

    @Test
    void theRepositorysTableParsesAndV1RunsEveryDtypeEverywhere() throws Exception {
        Path real = Path.of("../../cuda/kernels.table");
        Assumptions.assumeTrue(Files.exists(real), "no cuda/kernels.table in this checkout yet");
        KernelTable t = KernelTable.read(real);
        for (DType d : DType.values()) {
            KernelSelector.Selection s = KernelSelector.select("v1", t, 8, 0, d, new KernelSelector.Shape(7, 33, 17, 3, false), ALL,
                    Map.of());
            assertEquals("v1", s.family(), d + ": " + s);
        }
    }
}
