using Pip.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Pip.Torch.Models;

/// <summary>
/// Rotary position embeddings in the Hugging Face rotate-half convention, with <c>rope_theta</c> and the optional
/// <c>llama3</c> frequency scaling (the formula of transformers' <c>_compute_llama3_parameters</c>).
/// </summary>
/// <remarks>
/// The inverse frequencies are computed once in float32, as transformers does, and kept in managed memory, so the
/// embedding follows the model to any device. Cos/sin are computed in float32 and then cast to the requested type.
/// </remarks>
public sealed class RotaryEmbedding
{
    private readonly float[] _inverseFrequencies;

    /// <summary>Creates the rotary embedding of a configuration.</summary>
    /// <param name="config">The model configuration (<c>head_dim</c>, <c>rope_theta</c>, <c>rope_scaling</c>).</param>
    /// <exception cref="NotSupportedException">The rope scaling type is not <c>default</c> or <c>llama3</c>.</exception>
    public RotaryEmbedding(LlamaConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.HeadDim <= 0 || config.HeadDim % 2 != 0)
            throw new ArgumentException($"head_dim must be positive and even for rotary embeddings, got {config.HeadDim}.", nameof(config));
        if (!(config.RopeTheta > 0))
            throw new ArgumentException($"rope_theta must be positive, got {config.RopeTheta}.", nameof(config));
        HeadDim = config.HeadDim;
        _inverseFrequencies = ComputeInverseFrequencies(config.HeadDim, config.RopeTheta, config.RopeScaling);
    }

    /// <summary>The rotated width (<c>head_dim</c>).</summary>
    public int HeadDim { get; }

    /// <summary>The head_dim/2 inverse frequencies (after any scaling), in float32.</summary>
    public IReadOnlyList<float> InverseFrequencies => _inverseFrequencies;

    /// <summary>Computes cos and sin for the given positions.</summary>
    /// <param name="positionIds">Integer positions, shape [batch, seq].</param>
    /// <param name="dtype">The type of the returned tables (the model's activation type).</param>
    /// <returns>Tables of shape [batch, seq, head_dim] on the device of <paramref name="positionIds"/>.</returns>
    public RotaryCache Compute(Tensor positionIds, ScalarType dtype)
    {
        ArgumentNullException.ThrowIfNull(positionIds);
        if (positionIds.dim() != 2)
            throw new ArgumentException($"position ids must have shape [batch, seq], got [{string.Join(", ", positionIds.shape)}].", nameof(positionIds));
        using var scope = NewDisposeScope();
        var inv = tensor(_inverseFrequencies, dtype: ScalarType.Float32, device: positionIds.device);
        var freqs = positionIds.to(ScalarType.Float32).unsqueeze(-1) * inv;
        var emb = cat(new[] { freqs, freqs }, -1);
        var cos = emb.cos().to(dtype);
        var sin = emb.sin().to(dtype);
        var result = new RotaryCache(cos, sin);
        scope.MoveToOuter(cos, sin);
        return result;
    }

    /// <summary>Computes cos and sin for positions <paramref name="start"/> … start+length-1 of a batch.</summary>
    /// <param name="start">The first position.</param>
    /// <param name="length">The sequence length.</param>
    /// <param name="batch">The batch size.</param>
    /// <param name="dtype">The type of the tables.</param>
    /// <param name="device">The device of the tables.</param>
    /// <returns>Tables of shape [batch, length, head_dim].</returns>
    public RotaryCache Compute(long start, long length, long batch, ScalarType dtype, Device device)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        using var positions = arange(start, start + length, dtype: ScalarType.Int64, device: device);
        using var expanded = positions.unsqueeze(0).expand(batch, length);
        return Compute(expanded, dtype);
    }

    /// <summary>
    /// The inverse frequencies 1/theta^(2i/d), with llama3 scaling when requested, computed in float32 tensor ops
    /// exactly as transformers does.
    /// </summary>
    internal static float[] ComputeInverseFrequencies(int headDim, double theta, RopeScaling? scaling)
    {
        using var scope = NewDisposeScope();
        var exponent = arange(0, headDim, 2, dtype: ScalarType.Int64).to(ScalarType.Float32) / (double)headDim;
        var inv = 1.0 / full_like(exponent, theta).pow(exponent);
        if (scaling is not null)
        {
            switch (scaling.RopeType.ToLowerInvariant())
            {
                case "default":
                    break;
                case "llama3":
                    inv = ApplyLlama3Scaling(inv, scaling);
                    break;
                default:
                    throw new NotSupportedException($"rope_scaling type '{scaling.RopeType}' is not supported; Pip implements 'default' and 'llama3'.");
            }
        }
        return inv.data<float>().ToArray();
    }

    private static Tensor ApplyLlama3Scaling(Tensor invFreq, RopeScaling s)
    {
        if (!(s.Factor > 0) || !(s.HighFreqFactor > s.LowFreqFactor) || s.LowFreqFactor <= 0 || s.OriginalMaxPositionEmbeddings <= 0)
            throw new ArgumentException(
                $"llama3 rope_scaling needs factor > 0, high_freq_factor > low_freq_factor > 0 and original_max_position_embeddings > 0; got factor {s.Factor}, low {s.LowFreqFactor}, high {s.HighFreqFactor}, original {s.OriginalMaxPositionEmbeddings}.");
        double oldContext = s.OriginalMaxPositionEmbeddings;
        double lowFreqWavelen = oldContext / s.LowFreqFactor;
        double highFreqWavelen = oldContext / s.HighFreqFactor;
        var wavelen = 2 * Math.PI / invFreq;
        // Long wavelengths (low frequencies) are divided by the factor, short ones kept.
        var scaled = where(wavelen > lowFreqWavelen, invFreq / s.Factor, invFreq);
        // In between, interpolate smoothly.
        var smooth = (oldContext / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
        var smoothed = (1 - smooth) * scaled / s.Factor + smooth * scaled;
        var isMedium = (wavelen >= highFreqWavelen).logical_and(wavelen <= lowFreqWavelen);
        return where(isMedium, smoothed, scaled);
    }
}

/// <summary>The cos/sin tables of rotary embeddings for one sequence batch, shapes [batch, seq, head_dim].</summary>
public sealed class RotaryCache : IDisposable
{
    /// <summary>Wraps existing tables; the cache owns them.</summary>
    /// <param name="cos">Cosines, [batch, seq, head_dim].</param>
    /// <param name="sin">Sines, [batch, seq, head_dim].</param>
    public RotaryCache(Tensor cos, Tensor sin)
    {
        ArgumentNullException.ThrowIfNull(cos);
        ArgumentNullException.ThrowIfNull(sin);
        Cos = cos;
        Sin = sin;
    }

    /// <summary>Cosines, [batch, seq, head_dim].</summary>
    public Tensor Cos { get; }

    /// <summary>Sines, [batch, seq, head_dim].</summary>
    public Tensor Sin { get; }

    /// <summary>Applies the rotation to queries or keys of shape [batch, heads, seq, head_dim]: x·cos + rotate_half(x)·sin.</summary>
    /// <param name="x">Queries or keys.</param>
    /// <returns>The rotated tensor.</returns>
    public Tensor Apply(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        using var scope = NewDisposeScope();
        var half = x.shape[^1] / 2;
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        var rotated = cat(new[] { -x2, x1 }, -1);
        var cos = Cos.unsqueeze(1);
        var sin = Sin.unsqueeze(1);
        return (x * cos + rotated * sin).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Cos.Dispose();
        Sin.Dispose();
    }
}
