using Pip.Cli;
using Pip.Torch;

// Before anything touches TorchSharp: idle OpenMP threads sleep instead of spinning, so pip-prune does not slow down
// (and is not slowed down by) other CPU-bound processes. A user's own OMP_WAIT_POLICY wins.
TorchEnvironment.UsePassiveOpenMPWait();
return await PipCli.RunAsync(args).ConfigureAwait(false);
