package dev.rslora.backend.reference;

import dev.rslora.backend.Backend;
import dev.rslora.backend.BackendFactory;

/** The {@code reference} backend's provider (META-INF/services): the scalar oracle, always available. */
public final class ReferenceBackendFactory implements BackendFactory {

    public ReferenceBackendFactory() {
    }

    @Override
    public String name() {
        return "reference";
    }

    @Override
    public Availability probe() {
        return Availability.yes("scalar loops, double accumulation (the oracle)");
    }

    @Override
    public Backend create() {
        return new ReferenceBackend();
    }
}
