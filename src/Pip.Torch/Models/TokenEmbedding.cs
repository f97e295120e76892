using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Pip.Torch.Models;

/// <summary>A token-embedding table (Hugging Face <c>nn.Embedding</c>, parameter <c>weight</c>), created without random initialisation.</summary>
public sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")]
    private Parameter _weight;

    /// <summary>Creates a zero-filled table.</summary>
    /// <param name="vocabSize">Number of rows (tokens).</param>
    /// <param name="dim">Embedding width.</param>
    /// <param name="dtype">The parameter type.</param>
    /// <param name="device">The parameter device, or null for the CPU.</param>
    public TokenEmbedding(long vocabSize, long dim, ScalarType dtype, Device? device = null) : base(nameof(TokenEmbedding))
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vocabSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dim);
        _weight = (Parameter)new Parameter(zeros(vocabSize, dim, dtype: dtype, device: device)).DetachFromDisposeScope();
        RegisterComponents();
    }

    /// <summary>The table [vocab, dim], Hugging Face name <c>weight</c>. Setting it replaces (and disposes) the registered parameter.</summary>
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

    /// <summary>Looks up the rows of <paramref name="input"/> (int64 token ids of any shape); returns shape [..., dim].</summary>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var shape = input.shape.Append(_weight.shape[1]).ToArray();
        var rows = _weight.index_select(0, input.reshape(-1).to(ScalarType.Int64));
        return rows.reshape(shape).MoveToOuterDisposeScope();
    }
}
