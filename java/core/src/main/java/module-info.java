/**
 * rslora-core: tensors, the LoRA layer, the reference and Vector API backends, safetensors, PEFT
 * adapters, optimizers and the model-level adapter API. No native code.
 *
 * <p>Exported: the API packages. Not exported: the backend implementations
 * ({@code dev.rslora.backend.reference}, {@code dev.rslora.backend.cpu}), reached only through
 * {@link dev.rslora.backend.Backends} and the {@link dev.rslora.backend.BackendFactory} services
 * this module provides; other modules (rslora-cuda) provide more.
 *
 * <p>{@code jdk.incubator.vector} is optional ({@code requires static}): the {@code cpu} backend
 * needs it in the boot layer ({@code --add-modules jdk.incubator.vector}); without it
 * {@code Backends.get("auto")} falls back to the scalar reference and logs a WARNING once.
 */
module dev.rslora.core {
    requires static jdk.incubator.vector;
    // dev.rslora.simd.Fma reads HotSpot's UseFMA through them where they are resolved (else /proc/cpuinfo)
    requires static java.management;
    requires static jdk.management;
    requires com.fasterxml.jackson.databind;

    exports dev.rslora.tensor;
    exports dev.rslora.dropout;
    exports dev.rslora.optim;
    exports dev.rslora.backend;
    exports dev.rslora.core;
    exports dev.rslora.io;
    exports dev.rslora.peft;
    exports dev.rslora.train;
    exports dev.rslora.model;

    uses dev.rslora.backend.BackendFactory;

    provides dev.rslora.backend.BackendFactory with
            dev.rslora.backend.reference.ReferenceBackendFactory,
            dev.rslora.backend.cpu.CpuBackendFactory;
}
