using TorchSharp;
using static TorchSharp.torch;

namespace Pip.Torch.Streaming;

/// <summary>The phase of a <see cref="LayerEngine"/> pass.</summary>
public enum LayerPassPhase
{
    /// <summary>Layers run forward, first to last.</summary>
    Forward,

    /// <summary>The final norm and the output projection: losses and the gradient of the last hidden state.</summary>
    Head,

    /// <summary>Layers are differentiated, last to first.</summary>
    Backward,
}

/// <summary>Progress of a <see cref="LayerEngine"/> pass: a layer (or the head) is done.</summary>
/// <param name="Phase">The phase.</param>
/// <param name="Step">Steps of this phase done (1-based; 1 for the head).</param>
/// <param name="Steps">Steps of this phase (the layer count; 1 for the head).</param>
public sealed record LayerPassProgress(LayerPassPhase Phase, int Step, int Steps);

/// <summary>
/// A signed (weighted) combination of per-sequence losses, <c>Σ_j Weights[j] · loss_j</c>, where <c>loss_j</c> is the mean
/// next-token negative log-likelihood of <c>Sequences[j]</c> (Hugging Face's loss with labels = inputs). A pair
/// (x, x′) with weights (+1, −1) gives PIP's ∇L(x) − ∇L(x′); one sequence with weight 1 its plain gradient.
/// </summary>
/// <param name="Sequences">Token-id sequences, each of at least two tokens; they run as one right-padded batch.</param>
/// <param name="Weights">One weight per sequence.</param>
public sealed record LossCombination(IReadOnlyList<IReadOnlyList<int>> Sequences, IReadOnlyList<double> Weights)
{
    /// <summary>A combination of one sequence with weight 1 (its plain loss).</summary>
    /// <param name="sequence">The sequence.</param>
    /// <returns>The combination.</returns>
    public static LossCombination Single(IReadOnlyList<int> sequence) => new([sequence], [1.0]);

    /// <summary>The difference <c>loss(x) − loss(x′)</c> of a pair.</summary>
    /// <param name="original">x.</param>
    /// <param name="twin">x′.</param>
    /// <returns>The combination.</returns>
    public static LossCombination Difference(IReadOnlyList<int> original, IReadOnlyList<int> twin) => new([original, twin], [1.0, -1.0]);

    /// <summary>The mean of the sequences' losses.</summary>
    /// <param name="sequences">The sequences.</param>
    /// <returns>The combination.</returns>
    public static LossCombination Mean(IReadOnlyList<IReadOnlyList<int>> sequences)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        return new(sequences, sequences.Select(_ => 1.0 / sequences.Count).ToArray());
    }
}

/// <summary>
/// One decoder layer during a forward visit of <see cref="LayerEngine.Forward"/>: its weights, and its input and output
/// activations for every sequence of the visit (one right-padded batch).
/// </summary>
/// <remarks>
/// Valid only during the callback that receives it: the tensors and the module are released (a streamed layer's
/// weights freed) when the callback returns. Tensors the callback creates belong to the engine's dispose scope for the
/// layer and are freed with it too: reduce to numbers at once, or keep a copy with <c>clone().DetachFromDisposeScope()</c>
/// (then you own it). Do not modify the tensors or the weights.
/// </remarks>
public sealed class LayerActivations
{
    internal LayerActivations(int layer, int originalLayer, nn.Module module, Tensor input, Tensor output, Tensor tokenMask, IReadOnlyList<int> lengths)
    {
        Layer = layer;
        OriginalLayer = originalLayer;
        Module = module;
        Input = input;
        Output = output;
        TokenMask = tokenMask;
        Lengths = lengths;
    }

    /// <summary>The layer's current index.</summary>
    public int Layer { get; }

    /// <summary>The layer's index in the checkpoint as first loaded.</summary>
    public int OriginalLayer { get; }

    /// <summary>The layer (its <c>named_parameters()</c> are its weights under their Hugging Face names relative to the layer).</summary>
    public nn.Module Module { get; }

    /// <summary>The layer input [batch, maxLength, hidden] in the compute type.</summary>
    public Tensor Input { get; }

    /// <summary>The layer output [batch, maxLength, hidden] in the compute type.</summary>
    public Tensor Output { get; }

    /// <summary>1 at real tokens, 0 at padding [batch, maxLength] (float32).</summary>
    public Tensor TokenMask { get; }

    /// <summary>The sequences' lengths.</summary>
    public IReadOnlyList<int> Lengths { get; }
}

/// <summary>
/// One decoder layer during a gradient visit of <see cref="LayerEngine.Gradients"/>: the gradient of one
/// <see cref="LossCombination"/> with respect to the layer's parameters.
/// </summary>
/// <remarks>
/// Valid only during the callback that receives it: gradients, input and (streamed) weights are freed when it returns,
/// so at most one layer's gradients exist at a time. Tensors the callback creates are freed with the engine's dispose
/// scope for the layer: reduce at once (norms, sums), or keep a copy with <c>clone().DetachFromDisposeScope()</c>.
/// </remarks>
public sealed class LayerGradients
{
    internal LayerGradients(int layer, int originalLayer, int combination, nn.Module module, IReadOnlyList<string> names, IReadOnlyList<Tensor> parameters, IReadOnlyList<Tensor> gradients, Tensor input)
    {
        Layer = layer;
        OriginalLayer = originalLayer;
        Combination = combination;
        Module = module;
        ParameterNames = names;
        Parameters = parameters;
        Gradients = gradients;
        Input = input;
    }

    /// <summary>The layer's current index.</summary>
    public int Layer { get; }

    /// <summary>The layer's index in the checkpoint as first loaded.</summary>
    public int OriginalLayer { get; }

    /// <summary>The index of the combination in the list given to <see cref="LayerEngine.Gradients"/>.</summary>
    public int Combination { get; }

    /// <summary>The layer.</summary>
    public nn.Module Module { get; }

    /// <summary>The parameter names relative to the layer (<c>self_attn.q_proj.weight</c>, …), in the order of <see cref="Parameters"/>.</summary>
    public IReadOnlyList<string> ParameterNames { get; }

    /// <summary>The layer's parameters (compute type).</summary>
    public IReadOnlyList<Tensor> Parameters { get; }

    /// <summary>The gradients of the combination with respect to <see cref="Parameters"/>, in the same order.</summary>
    public IReadOnlyList<Tensor> Gradients { get; }

    /// <summary>The layer input for the combination's sequences [batch, maxLength, hidden].</summary>
    public Tensor Input { get; }

    /// <summary>The number of parameters of the layer.</summary>
    public long ParameterCount => Parameters.Sum(p => p.numel());
}

/// <summary>Losses with each single layer bypassed, from one pass (<see cref="LayerEngine.SkipEachLayer"/>).</summary>
/// <param name="Dense">The mean next-token NLL per token of the model as it is.</param>
/// <param name="Skipped">For each current layer k, the mean NLL with layer k bypassed (its input passed on unchanged).</param>
public sealed record LayerSkipLosses(double Dense, IReadOnlyList<double> Skipped);
