package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The sequence log-prob launches without a device: kernel names per dtype, params at the header's offsets, grids. */
class SeqLogprobKernelsTest {

    @Test
    void forwardIsRowsThenSumsAndBackwardIsOneBlockPerRow() {
        for (DType t : DType.values()) {
            LoraKernelsLaunchTest.Recorder rec = new LoraKernelsLaunchTest.Recorder();
            SeqLogprobKernels k = new SeqLogprobKernels(rec);
            SeqLogprobKernels.Call c = new SeqLogprobKernels.Call(0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 300, 7, 128_256);
            k.forward(t, c);
            k.backward(t, c);
            assertEquals(List.of(SeqLogprobKernels.rows(t), SeqLogprobKernels.SUM, SeqLogprobKernels.backward(t)), rec.names());
            assertEquals(new LaunchGeometry.Grid(2100, 1, 1), rec.launches.get(0).grid(), "one block per row, B·T = 2100");
            assertEquals(new LaunchGeometry.Grid(2, 1, 1), rec.launches.get(1).grid(), "ceil(300 / 256) blocks of sums");
            assertEquals(new LaunchGeometry.Grid(2100, 1, 1), rec.launches.get(2).grid());
            CStruct p = KernelParams.SEQ_LOGPROB;
            for (LoraKernelsLaunchTest.Launch l : rec.launches) {
                assertEquals(256, l.threads());
                assertEquals(72, l.params().length);
                assertEquals(0x10, l.ptr(p, "logits"));
                assertEquals(0x20, l.ptr(p, "labels"));
                assertEquals(0x30, l.ptr(p, "lse"));
                assertEquals(0x40, l.ptr(p, "tok"));
                assertEquals(0x50, l.ptr(p, "logp"));
                assertEquals(0x60, l.ptr(p, "grad"));
                assertEquals(0x70, l.ptr(p, "dlogits"));
                assertEquals(2100, l.i32(p, "rows"));
                assertEquals(128_256, l.i32(p, "vocab"));
                assertEquals(300, l.i32(p, "batch"));
                assertEquals(7, l.i32(p, "time"));
            }
        }
        assertEquals("rslora_seq_logprob_rows_v1_bf16", SeqLogprobKernels.rows(DType.BF16));
        assertEquals("rslora_seq_logprob_backward_v1_f16", SeqLogprobKernels.backward(DType.F16));
    }

    @Test
    void refusesShapesTheKernelsCannotIndex() {
        assertThrows(IllegalArgumentException.class, () -> new SeqLogprobKernels.Call(1, 1, 1, 1, 1, 1, 1, 0, 1, 1));
        assertThrows(IllegalArgumentException.class, () -> new SeqLogprobKernels.Call(1, 1, 1, 1, 1, 1, 1, 1, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> new SeqLogprobKernels.Call(1, 1, 1, 1, 1, 1, 1, 65_536, 65_536, 2));
    }

    @Test
    void everyKernelIsExportedByTheSource() throws IOException {
        String src = Files.readString(Path.of("../..", "cuda", "kernels", "seq_logprob.cuh"));
        for (DType t : DType.values()) {
            assertTrue(src.contains("void __launch_bounds__(rs::kThreads) " + SeqLogprobKernels.rows(t) + "(RsSeqLogprobParams p)"));
            assertTrue(src.contains("void __launch_bounds__(rs::kThreads) " + SeqLogprobKernels.backward(t) + "(RsSeqLogprobParams p)"));
        }
        assertTrue(src.contains("void __launch_bounds__(rs::kThreads) " + SeqLogprobKernels.SUM + "(RsSeqLogprobParams p)"));
        assertTrue(Files.readString(Path.of("../..", "cuda", "rslora_kernels.cu")).contains("#include \"kernels/seq_logprob.cuh\""));
    }
}
