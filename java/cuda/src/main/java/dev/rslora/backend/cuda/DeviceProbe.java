package dev.rslora.backend.cuda;

import dev.rslora.backend.BackendFactory.Availability;
import jcuda.CudaException;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.JCudaDriver;

import java.nio.charset.StandardCharsets;

/**
 * The JCuda half of the probe, loaded only after {@link DriverLibrary} found libcuda (JCuda's
 * native library links against it): JCuda natives load, cuInit succeeds, the device exists and
 * has compute capability 8.0 or newer (the fatbin holds sm_80..sm_90 SASS and compute_90 PTX).
 */
final class DeviceProbe {
    /** Oldest supported compute capability, as major·10 + minor. */
    static final int MIN_CC = 80;

    private DeviceProbe() {
    }

    static Availability probe(int ordinal, String kernelDetail) {
        try {
            JCudaDriver.setExceptionsEnabled(true);
        } catch (LinkageError | IllegalCallerException e) {
            if (NativeAccess.deniedCause(e) != null) {
                return Availability.no(NativeAccess.denied(JCudaDriver.class.getModule(), "JCuda loads its JNI library"));
            }
            return Availability.no("JCuda native library failed to load: " + e);
        }
        try {
            JCudaDriver.cuInit(0);
            int[] count = new int[1];
            JCudaDriver.cuDeviceGetCount(count);
            if (count[0] == 0) {
                return Availability.no("no CUDA device: the driver reports 0 devices");
            }
            if (ordinal < 0 || ordinal >= count[0]) {
                return Availability.no("CUDA device " + ordinal + " requested (-D" + CudaBackendFactory.DEVICE_PROPERTY
                        + ") but the driver reports " + count[0] + " device(s)");
            }
            CUdevice dev = new CUdevice();
            JCudaDriver.cuDeviceGet(dev, ordinal);
            int[] major = new int[1];
            int[] minor = new int[1];
            JCudaDriver.cuDeviceGetAttribute(major, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
            JCudaDriver.cuDeviceGetAttribute(minor, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
            byte[] name = new byte[256];
            JCudaDriver.cuDeviceGetName(name, name.length, dev);
            int[] driver = new int[1];
            JCudaDriver.cuDriverGetVersion(driver);
            String devName = cString(name);
            String cc = major[0] + "." + minor[0];
            if (major[0] * 10 + minor[0] < MIN_CC) {
                return Availability.no("CUDA device " + ordinal + " (" + devName + ") has compute capability " + cc
                        + " < 8.0: the kernels need sm_80 or newer");
            }
            return Availability.yes(devName + ", compute capability " + cc + ", driver CUDA " + driver[0] / 1000 + "."
                    + (driver[0] % 1000) / 10 + ", kernels: " + kernelDetail);
        } catch (CudaException e) {
            return Availability.no("CUDA driver error during probe: " + e.getMessage());
        }
    }

    private static String cString(byte[] b) {
        int len = 0;
        while (len < b.length && b[len] != 0) {
            len++;
        }
        return new String(b, 0, len, StandardCharsets.UTF_8);
    }
}
