using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pip.Torch.Models;

/// <summary>Helpers shared by the model modules.</summary>
internal static class ModelParts
{
    /// <summary>A zero-filled <see cref="Linear"/> (no random initialisation, which would be wasted work before loading).</summary>
    public static Linear Linear(long inFeatures, long outFeatures, bool hasBias, ScalarType dtype, Device? device)
    {
        var weight = new Parameter(zeros(outFeatures, inFeatures, dtype: dtype, device: device));
        var bias = hasBias ? new Parameter(zeros(outFeatures, dtype: dtype, device: device)) : null;
        return nn.Linear(weight, bias);
    }

    /// <summary>Checks that a type is one the model supports.</summary>
    public static void CheckDtype(ScalarType dtype)
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
            throw new ArgumentException($"The model supports float32, bfloat16 and float16 parameters, not {dtype}.", nameof(dtype));
    }

    /// <summary>Formats a shape as [a, b, c].</summary>
    public static string Shape(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
