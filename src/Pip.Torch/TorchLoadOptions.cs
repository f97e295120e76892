using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Pip.Torch;

/// <summary>How <see cref="TorchCausalLM.Load(string, TorchLoadOptions, CancellationToken)"/> loads a model folder.</summary>
public sealed record TorchLoadOptions
{
    /// <summary>
    /// The parameter type to compute in, or null for automatic: the checkpoint's own <c>torch_dtype</c> (float32 if
    /// absent) when the device computes it fast, else float32 (see <see cref="TorchPrecision"/>).
    /// </summary>
    public ScalarType? Dtype { get; init; }

    /// <summary>The device, or null for the CPU.</summary>
    public Device? Device { get; init; }

    /// <summary>
    /// Whether to load weights that hold NaN or ±Inf values. False (the default): such a checkpoint is refused with a
    /// <see cref="Pip.Checkpoints.CheckpointFormatException"/> naming the file, the tensors and the counts, since every
    /// score computed from it would be NaN. True: the model loads, and each such tensor is logged as a warning on
    /// <see cref="Logger"/> and listed in <see cref="TorchCausalLM.NonFiniteTensors"/>.
    /// </summary>
    public bool AllowNonFiniteWeights { get; init; }

    /// <summary>Where warnings of the load go (non-finite weights when allowed); null for none.</summary>
    public ILogger? Logger { get; init; }
}
