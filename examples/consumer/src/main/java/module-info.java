/** The consumer example as a named module: it needs rslora-core only (Jackson comes with it). */
module dev.rslora.examples.consumer {
    requires dev.rslora.core;
}
