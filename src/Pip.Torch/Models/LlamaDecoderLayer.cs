using Pip.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Pip.Torch.Models;

/// <summary>
/// One pre-norm decoder layer (Hugging Face <c>model.layers.N</c>):
/// <c>h = x + self_attn(input_layernorm(x)); out = h + mlp(post_attention_layernorm(h))</c>.
/// </summary>
public sealed class LlamaDecoderLayer : nn.Module<Tensor, RotaryCache, LayerKvCache?, Tensor>
{
#pragma warning disable IDE1006 // Hugging Face parameter names
    private readonly LlamaAttention self_attn;
    private readonly LlamaMlp mlp;
    private readonly RmsNorm input_layernorm;
    private readonly RmsNorm post_attention_layernorm;
#pragma warning restore IDE1006

    /// <summary>Creates a layer with zero-filled projections and all-ones norms, of the global shape of the configuration.</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="dtype">The parameter type.</param>
    /// <param name="device">The parameter device, or null for the CPU.</param>
    public LlamaDecoderLayer(LlamaConfig config, ScalarType dtype, Device? device = null)
        : this(config, (config ?? throw new ArgumentNullException(nameof(config))).GlobalShape, dtype, device)
    {
    }

    /// <summary>Creates a layer with zero-filled projections and all-ones norms, of a given shape.</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="shape">This layer's head counts and MLP width (see <see cref="LlamaConfig.ShapeOf"/>).</param>
    /// <param name="dtype">The parameter type.</param>
    /// <param name="device">The parameter device, or null for the CPU.</param>
    public LlamaDecoderLayer(LlamaConfig config, LayerShape shape, ScalarType dtype, Device? device = null) : base(nameof(LlamaDecoderLayer))
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(shape);
        self_attn = new LlamaAttention(config, shape, dtype, device);
        mlp = new LlamaMlp(config, shape.IntermediateSize, dtype, device);
        input_layernorm = new RmsNorm(config.HiddenSize, config.RmsNormEps, dtype, device);
        post_attention_layernorm = new RmsNorm(config.HiddenSize, config.RmsNormEps, dtype, device);
        RegisterComponents();
    }

    /// <summary>The attention block, Hugging Face name <c>self_attn</c>.</summary>
    public LlamaAttention SelfAttn => self_attn;

    /// <summary>The feed-forward block, Hugging Face name <c>mlp</c>.</summary>
    public LlamaMlp Mlp => mlp;

    /// <summary>The norm before attention, Hugging Face name <c>input_layernorm</c>.</summary>
    public RmsNorm InputLayerNorm => input_layernorm;

    /// <summary>The norm before the MLP, Hugging Face name <c>post_attention_layernorm</c>.</summary>
    public RmsNorm PostAttentionLayerNorm => post_attention_layernorm;

    /// <summary>The current shape of this layer, read from its weights (it follows width pruning).</summary>
    public LayerShape Shape => new((int)self_attn.NumHeads, (int)self_attn.NumKeyValueHeads, (int)mlp.IntermediateSize);

    /// <summary>The number of parameters of this layer.</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());

    /// <summary>Runs the layer.</summary>
    /// <param name="hidden">The layer input [batch, seq, hidden].</param>
    /// <param name="rope">Rotary tables for these positions (see <see cref="RotaryEmbedding.Compute(Tensor, ScalarType)"/>).</param>
    /// <param name="cache">This layer's key/value cache, or null.</param>
    /// <returns>The layer output [batch, seq, hidden].</returns>
    public override Tensor forward(Tensor hidden, RotaryCache rope, LayerKvCache? cache)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        using var scope = NewDisposeScope();
        var h = hidden + self_attn.call(input_layernorm.call(hidden), rope, cache);
        var output = h + mlp.call(post_attention_layernorm.call(h));
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>Runs the layer without a cache: <c>layer.forward(hidden, rope, null)</c>.</summary>
    /// <param name="hidden">The layer input [batch, seq, hidden].</param>
    /// <param name="rope">Rotary tables for these positions.</param>
    /// <returns>The layer output.</returns>
    public Tensor call(Tensor hidden, RotaryCache rope) => call(hidden, rope, null);
}
