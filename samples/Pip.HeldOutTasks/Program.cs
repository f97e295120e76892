// Pip.HeldOutTasks: builds two zero-shot multiple-choice tasks from the demo model's held-out corpus lines (lines the
// demo model never trained on: every 50th non-empty line of brown.txt then nlp-corpus.txt, the split of
// samples/Pip.TrainDemo), written in public lm-evaluation-harness formats so Pip's loaders score them unchanged:
//
//   heldout-endings.jsonl   OpenBookQA format: question_stem = the first ~60 % of a sentence's words, four choices =
//                           its true ending and the endings of three other held-out sentences of similar length.
//   heldout-words.jsonl     WinoGrande format (partial scoring): one word of a sentence replaced by "_", option1/option2
//                           = the true word and a word of the same length class drawn from other held-out sentences;
//                           the model scores the rest of the sentence after each option.
//
// The public tasks (BoolQ, PIQA, HellaSwag, ...) cannot be downloaded on the project's machines, and a 2.7 M-parameter
// model scores chance on them anyway; these tasks measure the same thing (which continuation the model prefers) at the
// demo model's level. Deterministic for a given seed.
//
//   dotnet run -c Release --project samples/Pip.HeldOutTasks -- [--corpus DIR] [--out DIR] [--items 500] [--seed 1]
using System.Text.Json;
using System.Text.RegularExpressions;

string? Arg(string name) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
var corpus = Arg("--corpus") ?? FindUp(Directory.GetCurrentDirectory(), Path.Combine("shared", "data", "corpus"));
var outDir = Path.GetFullPath(Arg("--out") ?? Path.Combine("data", "tasks"));
int items = int.Parse(Arg("--items") ?? "500");
int seed = int.Parse(Arg("--seed") ?? "1");

var heldOut = DemoCorpus.Split(corpus).Valid; // the split of samples/Pip.TrainDemo

// Sentences of 8-40 plain words (no quotes or brackets, which make endings trivially matchable or broken).
var words = new Regex(@"^[A-Za-z][A-Za-z',.;:!?-]*$");
var sentences = heldOut
    .Select(s => s.Split(' ', StringSplitOptions.RemoveEmptyEntries))
    .Where(w => w.Length is >= 8 and <= 40 && w.All(words.IsMatch))
    .ToList();
Console.WriteLine($"{heldOut.Count} held-out lines, {sentences.Count} usable sentences.");

var rng = new Random(seed);
Shuffle(sentences, rng);
Directory.CreateDirectory(outDir);

// Endings: split after ~60 % of the words; distractors are endings of other sentences with ±2 words of the true one.
var endingsPath = Path.Combine(outDir, "heldout-endings.jsonl");
var endings = sentences.Select(w => { int k = (int)Math.Round(w.Length * 0.6); return (Stem: string.Join(' ', w[..k]), End: string.Join(' ', w[k..]), Count: w.Length - k); }).ToList();
var written = 0;
using (var writer = Atomic(endingsPath, out var tmp))
{
    for (int i = 0; i < endings.Count && written < items; i++)
    {
        var (stem, end, count) = endings[i];
        var pool = endings.Where((e, j) => j != i && Math.Abs(e.Count - count) <= 2 && e.End != end).Select(e => e.End).Distinct().ToList();
        if (pool.Count < 3) continue;
        var choices = new List<string> { end };
        while (choices.Count < 4) { var c = pool[rng.Next(pool.Count)]; if (!choices.Contains(c)) choices.Add(c); }
        Shuffle(choices, rng);
        string[] labels = ["A", "B", "C", "D"];
        writer.WriteLine(JsonSerializer.Serialize(new
        {
            id = $"heldout-endings-{written}",
            question_stem = stem,
            choices = new { text = choices, label = labels },
            answerKey = labels[choices.IndexOf(end)],
        }));
        written++;
    }
    writer.Close();
    File.Move(tmp, endingsPath, overwrite: true);
}
Console.WriteLine($"{written} items -> {endingsPath}");

// Words: a lower-case alphabetic word (4+ letters) at least 2 words in and 3 words before the end; the distractor is a
// word of the same length (±1) from the other sentences, never the same word.
var wordsPath = Path.Combine(outDir, "heldout-words.jsonl");
var vocabulary = sentences.SelectMany(w => w).Where(w => w.Length >= 4 && w.All(char.IsLower)).Distinct().OrderBy(w => w, StringComparer.Ordinal).ToList();
written = 0;
using (var writer = Atomic(wordsPath, out var tmp))
{
    foreach (var w in sentences.AsEnumerable().Reverse())
    {
        if (written >= items) break;
        var positions = Enumerable.Range(2, Math.Max(0, w.Length - 5)).Where(p => w[p].Length >= 4 && w[p].All(char.IsLower)).ToList();
        if (positions.Count == 0) continue;
        int pos = positions[rng.Next(positions.Count)];
        var pool = vocabulary.Where(v => Math.Abs(v.Length - w[pos].Length) <= 1 && v != w[pos]).ToList();
        var other = pool[rng.Next(pool.Count)];
        bool trueFirst = rng.Next(2) == 0;
        var blanked = w.ToArray();
        blanked[pos] = "_";
        writer.WriteLine(JsonSerializer.Serialize(new
        {
            sentence = string.Join(' ', blanked),
            option1 = trueFirst ? w[pos] : other,
            option2 = trueFirst ? other : w[pos],
            answer = trueFirst ? "1" : "2",
        }));
        written++;
    }
    writer.Close();
    File.Move(tmp, wordsPath, overwrite: true);
}
Console.WriteLine($"{written} items -> {wordsPath}");
return 0;

static StreamWriter Atomic(string path, out string tmp)
{
    tmp = path + ".tmp";
    return new StreamWriter(tmp, false, new System.Text.UTF8Encoding(false)) { NewLine = "\n" };
}

static void Shuffle<T>(IList<T> list, Random rng)
{
    for (int i = list.Count - 1; i > 0; i--)
    {
        int j = rng.Next(i + 1);
        (list[i], list[j]) = (list[j], list[i]);
    }
}

static string FindUp(string start, string relative)
{
    for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
    {
        var candidate = Path.Combine(dir.FullName, relative);
        if (Directory.Exists(candidate)) return candidate;
    }
    throw new DirectoryNotFoundException($"No '{relative}' folder above '{start}'; pass --corpus DIR.");
}
