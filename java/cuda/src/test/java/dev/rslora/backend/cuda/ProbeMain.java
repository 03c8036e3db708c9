package dev.rslora.backend.cuda;

/** Run in a child JVM by {@link NativeAccessDeniedTest}: prints the cuda probe's reason and the driver check. */
public final class ProbeMain {
    private ProbeMain() {
    }

    /** Prints "cuda: DETAIL" and "driver: REASON". */
    public static void main(String[] args) {
        System.out.println("cuda: " + new CudaBackendFactory().probe().detail());
        System.out.println("driver: " + DriverLibrary.missingReason());
    }
}
