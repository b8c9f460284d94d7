import TunnelSimulation

/// The tunnel state machine in the manner of Firezone's `tunnel-proto` target: the input bytes are played back
/// as the choices of ``TunnelModel/transitions(using:maxSteps:)``: an initial topology (the client's resources,
/// whether direct UDP is blocked) and up to 20 transitions (traffic, DNS over UDP and TCP, resource changes,
/// rejections, roaming, restarts, relay outages, portal reconnects, idling). ``TunnelModel/run(initial:steps:)``
/// applies them to the real ClientState, GatewayState and Node in the simulation and checks after every step
/// that what was delivered, translated and refused matches the model, that routes and resource status equal
/// the model's, and that nothing complained (the "no ERROR log" rule). Any disagreement stops the fuzzer.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTunnelProto(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var choices = FuzzedChoices(Array(UnsafeBufferPointer(start: data, count: size)))
    let (initial, steps) = TunnelModel.transitions(using: &choices, maxSteps: 20)
    let failure: String?
    do {
        failure = try TunnelModel.run(initial: initial, steps: steps)
    } catch {
        failure = "a step threw \(error)"
    }
    guard let failure else { return 0 }
    fatalError("property violated: the tunnel disagrees with its model: \(failure)\ninitial \(initial), transitions: \(steps)")
}
