using Pip.Tokenization;
using Pip.Torch.Tests.Models;
using Pip.Torch.Tests.Pruning;

namespace Pip.Torch.Tests.Evaluation;

/// <summary>
/// A temporary folder with a tiny random 4-layer Llama checkpoint (byte-level tokenizer, BOS added) and small
/// WikiText-2, PTB and BoolQ files in the layouts of the real ones.
/// </summary>
public sealed class ComparisonFixture : IDisposable
{
    public ComparisonFixture()
    {
        Directory.CreateDirectory(Root);
        var tokenizerFolder = Path.Combine(Root, "tokenizer");
        var bpe = new BpeTrainer(258, specialTokens: ["<s>", "</s>"]).Train([]);
        HfTokenizerWriter.WriteByteLevelBpe(tokenizerFolder, bpe, "<s>", "</s>", addBosToken: true);
        using (var model = new TorchCausalLM(TinyModels.Random(PruningFixtures.Config(layers: 4), seed: 11), tokenizer: null, sourceFolder: tokenizerFolder))
        {
            model.Save(ModelFolder);
        }

        File.WriteAllText(WikiTextFile,
            " \n = Valkyria Chronicles = \n \n The game began development in 2010 , carrying over a large portion of the work . \n" +
            " It met with positive sales in Japan , and was praised by both Japanese and western critics . \n \n" +
            " = = Gameplay = = \n \n As with previous games , the player takes control of a military unit . \n");
        File.WriteAllText(PtbFile,
            " the stock market fell sharply on monday \n investors sold shares of <unk> companies \n the N index rose N N \n");
        File.WriteAllLines(BoolQFile,
        [
            """{"question": "is the sky blue", "passage": "The sky is blue on a clear day.", "label": 1}""",
            """{"question": "do cats bark", "passage": "Cats meow; dogs bark.", "label": 0}""",
            """{"question": "is water wet", "passage": "Water makes things wet.", "label": 1}""",
        ]);
    }

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "pip-comparison-tests-" + Guid.NewGuid().ToString("N"));

    public string ModelFolder => Path.Combine(Root, "model");

    public string WikiTextFile => Path.Combine(Root, "wiki.test.tokens");

    public string PtbFile => Path.Combine(Root, "ptb.valid.txt");

    public string BoolQFile => Path.Combine(Root, "boolq.jsonl");

    /// <summary>Short calibration texts (each well under 128 byte tokens).</summary>
    public static CalibrationSet Calibration => CalibrationSet.FromTexts(
    [
        "the cat sat on the mat while the host waited later",
        "a flock of birds flew over the green hills at dawn",
        "we went home early because the weather turned cold",
    ]);

    public void Dispose()
    {
        if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true);
    }
}
