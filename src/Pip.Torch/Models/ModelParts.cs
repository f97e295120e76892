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

    /// <summary>A new <see cref="Linear"/> holding the given output rows of <paramref name="source"/> (weight rows and bias entries). Call under no_grad.</summary>
    public static Linear SelectRows(Linear source, Tensor rows)
    {
        var weight = source.weight!;
        var bias = source.bias;
        return nn.Linear(
            new Parameter(weight.detach().index_select(0, rows), weight.requires_grad),
            bias is null ? null : new Parameter(bias.detach().index_select(0, rows), bias.requires_grad));
    }

    /// <summary>A new <see cref="Linear"/> holding the given input columns of <paramref name="source"/> and a copy of its bias. Call under no_grad.</summary>
    public static Linear SelectColumns(Linear source, Tensor columns)
    {
        var weight = source.weight!;
        var bias = source.bias;
        return nn.Linear(
            new Parameter(weight.detach().index_select(1, columns), weight.requires_grad),
            bias is null ? null : new Parameter(bias.detach().clone(), bias.requires_grad));
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
