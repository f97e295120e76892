using Pip.Checkpoints;

namespace Pip.Cli.Infrastructure;

/// <summary>Named model shapes (Llama and OPT) for <c>create-random</c>.</summary>
internal static class ModelPresets
{
    /// <summary>The preset names, in help order.</summary>
    public static readonly IReadOnlyList<string> Names = ["tiny", "small", "llama-3.2-1b", "llama3-8b", "llama3-70b", "opt-tiny"];

    /// <summary>The Llama 3.1 family's shared configuration, at the 8 B model's sizes.</summary>
    private static LlamaConfig Llama31 => new()
    {
        Family = DecoderFamily.Llama,
        VocabSize = 128256,
        HiddenSize = 4096,
        IntermediateSize = 14336,
        NumHiddenLayers = 32,
        NumAttentionHeads = 32,
        NumKeyValueHeads = 8,
        HeadDim = 128,
        RmsNormEps = 1e-5,
        RopeTheta = 500000,
        RopeScaling = new RopeScaling("llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192),
        MaxPositionEmbeddings = 131072,
        TieWordEmbeddings = false,
    };

    /// <summary>The configuration of a preset (no BOS/EOS ids or dtype: the caller sets those).</summary>
    public static IModelConfig Get(string name) => name switch
    {
        // ~0.25 M parameters, untied head: fast enough for tests.
        "tiny" => new LlamaConfig
        {
            Family = DecoderFamily.Llama,
            VocabSize = 512,
            HiddenSize = 64,
            IntermediateSize = 176,
            NumHiddenLayers = 4,
            NumAttentionHeads = 4,
            NumKeyValueHeads = 2,
            HeadDim = 16,
            RmsNormEps = 1e-5,
            RopeTheta = 10000,
            MaxPositionEmbeddings = 2048,
            TieWordEmbeddings = false,
        },
        // ~28 M parameters, tied embeddings: quick experiments on a CPU.
        "small" => new LlamaConfig
        {
            Family = DecoderFamily.Llama,
            VocabSize = 8192,
            HiddenSize = 512,
            IntermediateSize = 1408,
            NumHiddenLayers = 8,
            NumAttentionHeads = 8,
            NumKeyValueHeads = 4,
            HeadDim = 64,
            RmsNormEps = 1e-5,
            RopeTheta = 500000,
            MaxPositionEmbeddings = 4096,
            TieWordEmbeddings = true,
        },
        // The shape of meta-llama/Llama-3.2-1B (1.24 B parameters), for benchmarks.
        "llama-3.2-1b" => new LlamaConfig
        {
            Family = DecoderFamily.Llama,
            VocabSize = 128256,
            HiddenSize = 2048,
            IntermediateSize = 8192,
            NumHiddenLayers = 16,
            NumAttentionHeads = 32,
            NumKeyValueHeads = 8,
            HeadDim = 64,
            RmsNormEps = 1e-5,
            RopeTheta = 500000,
            RopeScaling = new RopeScaling("llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192),
            MaxPositionEmbeddings = 131072,
            TieWordEmbeddings = true,
        },
        // The shape of meta-llama/Llama-3.1-8B (8.03 B parameters, 16 GB in bf16): untied head, llama3 RoPE scaling.
        "llama3-8b" => Llama31,
        // The shape of meta-llama/Llama-3.1-70B (70.6 B parameters, 141 GB in bf16): the same family, wider and deeper.
        "llama3-70b" => Llama31 with { HiddenSize = 8192, IntermediateSize = 28672, NumHiddenLayers = 80, NumAttentionHeads = 64 },
        // ~0.2 M parameters, OPT layout (learned positions, LayerNorm, ReLU MLP, biases, tied head): for tests.
        "opt-tiny" => new OptConfig
        {
            VocabSize = 512,
            HiddenSize = 64,
            FfnDim = 256,
            NumHiddenLayers = 4,
            NumAttentionHeads = 4,
            HeadDim = 16,
            WordEmbedProjDim = 64,
            MaxPositionEmbeddings = 2048,
            DoLayerNormBefore = true,
            TieWordEmbeddings = true,
            PadTokenId = null,
        },
        _ => throw new CliInputException($"Unknown preset '{name}'; use one of {string.Join(", ", Names)}."),
    };
}
