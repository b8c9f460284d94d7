// The simulated network is the simulation's ground: users of the simulated client and gateway get it without a
// second import.
@_exported import SimulatedNetwork
