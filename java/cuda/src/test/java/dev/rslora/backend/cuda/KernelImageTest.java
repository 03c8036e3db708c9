package dev.rslora.backend.cuda;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The build put the kernel fatbin (or the reason it could not) into the classpath. */
class KernelImageTest {

    @Test
    void propertiesRecordWhetherTheKernelsWereBuilt() throws IOException {
        Properties p = new Properties();
        try (InputStream in = KernelImage.class.getResourceAsStream(KernelImage.PROPERTIES)) {
            assertNotNull(in, KernelImage.PROPERTIES + " missing: native-build/build-kernels.sh did not run");
            p.load(in);
        }
        assertTrue(p.getProperty("built").equals("true") || p.getProperty("built").equals("false"), p.toString());
        assertEquals("sm_80,sm_86,sm_89,sm_90", p.getProperty("archs"));
        assertEquals("compute_90", p.getProperty("ptx"));
    }

    @Test
    void fatbinIsInTheBuildOutputWithTheFatbinMagic() {
        KernelImage.Status s = KernelImage.load();
        if (!s.built()) {
            assertTrue(s.reason().startsWith("kernels not built: "), s.reason());
            Assumptions.abort("skipped: " + s.reason());
        }
        byte[] img = s.image();
        assertEquals(0x50, img[0] & 0xFF);
        assertEquals(0xED, img[1] & 0xFF);
        assertEquals(0x55, img[2] & 0xFF);
        assertEquals(0xBA, img[3] & 0xFF);
        assertEquals(KernelImage.FATBIN_MAGIC, KernelImage.magic(img));
        assertTrue(img.length > 100_000, "fatbin of " + img.length + " bytes is too small for 4 SASS archs + PTX");
        // every exported kernel name is in the image (ELF symbol tables of the cubins)
        String latin = new String(img, java.nio.charset.StandardCharsets.ISO_8859_1);
        for (String k : new String[] {"rslora_lora_down_v1_bf16", "rslora_lora_forward_v1_f16", "rslora_lora_backward_vdb_v1_f32",
                "rslora_lora_backward_da_v1_bf16", "rslora_lora_backward_dx_v1_f16", "rslora_lora_merge_v1_f32",
                "rslora_reduce_groups_v1", "rslora_convert_f32_to_bf16", "rslora_adamw_v1", "rslora_grad_sumsq_v1",
                "rslora_grad_norm_finish_v1"}) {
            assertTrue(latin.contains(k), k + " not in the fatbin");
        }
    }

    @Test
    void ptxasReportWasWrittenWithoutSpills() throws IOException {
        java.nio.file.Path report = java.nio.file.Path.of("target", "ptxas-report.txt");
        KernelImage.Status s = KernelImage.load();
        Assumptions.assumeTrue(s.built(), () -> "skipped: " + s.reason());
        Assumptions.assumeTrue(java.nio.file.Files.exists(report), "skipped: no " + report + " (not a Maven build)");
        String text = java.nio.file.Files.readString(report);
        assertTrue(text.contains("rslora_lora_forward_v1_bf16"), "report lists the kernels");
        assertTrue(!text.contains("SPILL WARNING"), "a kernel spills registers:\n" + text.lines()
                .filter(l -> l.contains("SPILL WARNING")).toList());
    }
}
