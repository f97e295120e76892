using Pip.Checkpoints;
using Pip.Tokenization;
using Pip.Torch.Models;
using Pip.Torch.Tests.Models;
using Pip.Torch.Tests.Pruning;

namespace Pip.Torch.Tests.EndToEnd;

/// <summary>A tiny Llama checkpoint folder (config, safetensors, byte-level tokenizer) in a temporary folder, deleted on dispose.</summary>
internal sealed class EndToEndCheckpoint : IDisposable
{
    /// <summary>English calibration texts with enough long words for real-word edits.</summary>
    public static readonly string[] Texts =
    [
        "The river carried small boats past the old mill while children watched from the stone bridge above.",
        "Farmers brought their harvest into town early, hoping prices would stay high before winter arrived.",
        "After the long meeting, the council agreed to repair every road leading north toward the mountains.",
    ];

    private EndToEndCheckpoint(string root)
    {
        Root = root;
    }

    public string Root { get; }

    public string ModelFolder => Path.Combine(Root, "model");

    /// <summary>A path inside the temporary folder.</summary>
    public string PathOf(string name) => Path.Combine(Root, name);

    /// <summary>Writes a random model of <paramref name="layers"/> layers with the test tokenizer (BOS added).</summary>
    public static EndToEndCheckpoint Create(int layers, long seed)
    {
        var checkpoint = new EndToEndCheckpoint(Path.Combine(Path.GetTempPath(), "pip-e2e-" + Guid.NewGuid().ToString("N")));
        var tokenizerFolder = Path.Combine(checkpoint.Root, "tokenizer");
        var bpe = new BpeTrainer(258, specialTokens: ["<s>", "</s>"]).Train([]);
        HfTokenizerWriter.WriteByteLevelBpe(tokenizerFolder, bpe, "<s>", "</s>", addBosToken: true);
        LlamaConfig config = PruningFixtures.Config(layers) with { BosTokenId = 0, EosTokenIds = [1] };
        using var model = new TorchCausalLM(TinyModels.Random(config, seed), tokenizer: null, sourceFolder: tokenizerFolder);
        model.Save(checkpoint.ModelFolder);
        return checkpoint;
    }

    public void Dispose()
    {
        if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true);
    }
}
