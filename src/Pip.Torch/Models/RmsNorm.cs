using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Pip.Torch.Models;

/// <summary>
/// Root-mean-square layer normalisation as in Hugging Face <c>LlamaRMSNorm</c>: the input is normalised in float32 and
/// cast back to its own type before it is multiplied by <see cref="Weight"/>.
/// </summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")]
    private Parameter _weight;

    /// <summary>Creates a norm whose weight is all ones.</summary>
    /// <param name="size">The normalised (last) dimension.</param>
    /// <param name="eps">The epsilon added to the mean square (<c>rms_norm_eps</c>).</param>
    /// <param name="dtype">The parameter type.</param>
    /// <param name="device">The parameter device, or null for the CPU.</param>
    public RmsNorm(long size, double eps, ScalarType dtype, Device? device = null) : base(nameof(RmsNorm))
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        Eps = eps;
        _weight = new Parameter(ones(size, dtype: dtype, device: device)).DetachFromDisposeScope() as Parameter
            ?? throw new InvalidOperationException("Parameter creation failed.");
        RegisterComponents();
    }

    /// <summary>The epsilon added to the mean square.</summary>
    public double Eps { get; }

    /// <summary>The scale, Hugging Face name <c>weight</c>. Setting it replaces (and disposes) the registered parameter.</summary>
    public Parameter Weight
    {
        get => _weight;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            if (value.Handle == _weight.Handle) return;
            _weight.Dispose();
            _weight = (Parameter)value.DetachFromDisposeScope();
            ConditionallyRegisterParameter("weight", _weight);
        }
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var inputType = input.dtype;
        var x = input.to(ScalarType.Float32);
        var variance = x.pow(2).mean(new long[] { -1 }, keepdim: true);
        var normed = (x * (variance + Eps).rsqrt()).to(inputType);
        return (_weight * normed).MoveToOuterDisposeScope();
    }
}
