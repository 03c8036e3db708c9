package dev.rslora.backend;

/** A requested backend cannot run here; the message says why. */
public final class BackendUnavailableException extends RuntimeException {
    /**
     * An exception whose message says which backend is unavailable and why.
     *
     * @param message names the backend and the reason, e.g. the probe's detail
     */

    public BackendUnavailableException(String message) {
        super(message);
    }
}
