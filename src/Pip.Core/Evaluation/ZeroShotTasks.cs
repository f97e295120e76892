using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Pip.Evaluation;

/// <summary>The zero-shot multiple-choice tasks Pip can load.</summary>
public enum ZeroShotTaskKind
{
    /// <summary>BoolQ (SuperGLUE): <c>passage</c>, <c>question</c>, <c>label</c> (0/1) or <c>answer</c> (false/true).</summary>
    BoolQ,

    /// <summary>PIQA: <c>goal</c>, <c>sol1</c>, <c>sol2</c>, <c>label</c>.</summary>
    Piqa,

    /// <summary>HellaSwag: <c>activity_label</c>, <c>ctx_a</c>, <c>ctx_b</c>, <c>endings</c>, <c>label</c>.</summary>
    HellaSwag,

    /// <summary>WinoGrande: <c>sentence</c> (with one <c>_</c>), <c>option1</c>, <c>option2</c>, <c>answer</c> ("1"/"2").</summary>
    WinoGrande,

    /// <summary>ARC-Easy: <c>question</c>, <c>choices</c> {<c>text</c>, <c>label</c>}, <c>answerKey</c>.</summary>
    ArcEasy,

    /// <summary>ARC-Challenge: as <see cref="ArcEasy"/>.</summary>
    ArcChallenge,

    /// <summary>OpenBookQA: <c>question_stem</c>, <c>choices</c> {<c>text</c>, <c>label</c>}, <c>answerKey</c>.</summary>
    OpenBookQA,
}

/// <summary>A task data file has a line that cannot be read; the message names the file and the line.</summary>
public sealed class TaskDataException : FormatException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="source">The file (or source name).</param>
    /// <param name="lineNumber">The 1-based line number.</param>
    /// <param name="problem">What is wrong.</param>
    /// <param name="inner">The underlying error, or null.</param>
    public TaskDataException(string source, int lineNumber, string problem, Exception? inner = null)
        : base($"{source}:{lineNumber}: {problem}", inner)
    {
        Source = source;
        LineNumber = lineNumber;
        Problem = problem;
    }

    /// <summary>The file (or source name).</summary>
    public new string Source { get; }

    /// <summary>The 1-based line number.</summary>
    public int LineNumber { get; }

    /// <summary>What is wrong, without the location.</summary>
    public string Problem { get; }
}

/// <summary>
/// Loaders for the public JSONL files of the zero-shot tasks (Hugging Face datasets exported with <c>to_json</c>, one
/// JSON object a line), building each task's prompts as lm-evaluation-harness's task YAMLs define them (zero-shot,
/// target delimiter " "). Fields other than those a task reads are ignored; blank lines are skipped.
/// </summary>
public static partial class ZeroShotTasks
{
    /// <summary>All task kinds, in the order papers usually list them.</summary>
    public static IReadOnlyList<ZeroShotTaskKind> All { get; } =
    [
        ZeroShotTaskKind.BoolQ, ZeroShotTaskKind.Piqa, ZeroShotTaskKind.HellaSwag, ZeroShotTaskKind.WinoGrande,
        ZeroShotTaskKind.ArcEasy, ZeroShotTaskKind.ArcChallenge, ZeroShotTaskKind.OpenBookQA,
    ];

    /// <summary>The task's name in lm-evaluation-harness.</summary>
    /// <param name="kind">The task.</param>
    public static string Name(ZeroShotTaskKind kind) => kind switch
    {
        ZeroShotTaskKind.BoolQ => "boolq",
        ZeroShotTaskKind.Piqa => "piqa",
        ZeroShotTaskKind.HellaSwag => "hellaswag",
        ZeroShotTaskKind.WinoGrande => "winogrande",
        ZeroShotTaskKind.ArcEasy => "arc_easy",
        ZeroShotTaskKind.ArcChallenge => "arc_challenge",
        ZeroShotTaskKind.OpenBookQA => "openbookqa",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown task."),
    };

    /// <summary>Finds a task by its lm-evaluation-harness name (case-insensitive; "-" may stand for "_").</summary>
    /// <param name="name">The name.</param>
    /// <returns>The task.</returns>
    /// <exception cref="ArgumentException">No task has that name; the message lists the names.</exception>
    public static ZeroShotTaskKind Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var key = name.Trim().Replace('-', '_');
        foreach (var kind in All)
        {
            if (string.Equals(Name(kind), key, StringComparison.OrdinalIgnoreCase)) return kind;
        }
        throw new ArgumentException($"Unknown task '{name}'. Known tasks: {string.Join(", ", All.Select(Name))}.", nameof(name));
    }

    /// <summary>Whether lm-evaluation-harness reports <c>acc_norm</c> for the task (BoolQ and WinoGrande report only <c>acc</c>).</summary>
    /// <param name="kind">The task.</param>
    public static bool ReportsAccNorm(ZeroShotTaskKind kind) => kind is not (ZeroShotTaskKind.BoolQ or ZeroShotTaskKind.WinoGrande);

    /// <summary>Loads a JSONL file.</summary>
    /// <param name="kind">The task.</param>
    /// <param name="path">The file.</param>
    /// <param name="maxItems">Load at most this many items (the first ones), or null for all.</param>
    /// <returns>The task.</returns>
    /// <exception cref="TaskDataException">A line is not a JSON object or lacks a field; the message names the file and line.</exception>
    public static MultipleChoiceTask Load(ZeroShotTaskKind kind, string path, int? maxItems = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        return Load(kind, reader, path, maxItems);
    }

    /// <summary>Reads JSONL text.</summary>
    /// <param name="kind">The task.</param>
    /// <param name="reader">The text.</param>
    /// <param name="sourceName">The name errors give for the text (a file path).</param>
    /// <param name="maxItems">Read at most this many items, or null for all.</param>
    /// <returns>The task.</returns>
    /// <exception cref="TaskDataException">A line is not a JSON object or lacks a field; the message names the source and line.</exception>
    public static MultipleChoiceTask Load(ZeroShotTaskKind kind, TextReader reader, string sourceName, int? maxItems = null)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(sourceName);
        if (maxItems is < 0) throw new ArgumentOutOfRangeException(nameof(maxItems), maxItems, "Must not be negative.");
        var items = new List<MultipleChoiceItem>();
        var lineNumber = 0;
        while (maxItems is null || items.Count < maxItems)
        {
            var line = reader.ReadLine();
            if (line is null) break;
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonDocument document;
            try
            {
                document = JsonDocument.Parse(line);
            }
            catch (JsonException e)
            {
                throw new TaskDataException(sourceName, lineNumber, $"not valid JSON ({e.Message}).", e);
            }
            using (document)
            {
                try
                {
                    items.Add(FromDocument(kind, document.RootElement));
                }
                catch (FormatException e)
                {
                    throw new TaskDataException(sourceName, lineNumber, $"not a {Name(kind)} record: {e.Message}", e);
                }
            }
        }
        if (items.Count == 0 && maxItems != 0) throw new TaskDataException(sourceName, lineNumber, $"no {Name(kind)} record in the file.");
        return new MultipleChoiceTask(Name(kind), items, ReportsAccNorm(kind));
    }

    /// <summary>Builds one item from a parsed record.</summary>
    /// <param name="kind">The task.</param>
    /// <param name="doc">The record (a JSON object).</param>
    /// <returns>The item.</returns>
    /// <exception cref="FormatException">The record lacks a field or has one of the wrong type; the message says which.</exception>
    public static MultipleChoiceItem FromDocument(ZeroShotTaskKind kind, JsonElement doc)
    {
        if (doc.ValueKind != JsonValueKind.Object) throw new FormatException($"expected a JSON object, got {doc.ValueKind}.");
        return kind switch
        {
            ZeroShotTaskKind.BoolQ => BoolQ(doc),
            ZeroShotTaskKind.Piqa => Piqa(doc),
            ZeroShotTaskKind.HellaSwag => HellaSwag(doc),
            ZeroShotTaskKind.WinoGrande => WinoGrande(doc),
            ZeroShotTaskKind.ArcEasy or ZeroShotTaskKind.ArcChallenge => Arc(doc),
            ZeroShotTaskKind.OpenBookQA => OpenBookQA(doc),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown task."),
        };
    }

    /// <summary>
    /// lm-evaluation-harness's HellaSwag <c>preprocess</c>: trim, " [title]" → ". ", remove bracketed artifacts
    /// (<c>\[.*?\]</c>), then replace double spaces by single ones (one pass).
    /// </summary>
    /// <param name="text">The text.</param>
    /// <returns>The cleaned text.</returns>
    public static string PreprocessHellaSwag(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = PythonStrip(text);
        t = t.Replace(" [title]", ". ", StringComparison.Ordinal);
        t = BracketArtifact().Replace(t, "");
        return t.Replace("  ", " ", StringComparison.Ordinal);
    }

    /// <summary>Python's <c>str.capitalize</c>: the first character upper-case, the rest lower-case.</summary>
    /// <param name="text">The text.</param>
    /// <returns>The capitalised text.</returns>
    public static string PythonCapitalize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0) return text;
        var first = char.IsHighSurrogate(text[0]) && text.Length > 1 ? 2 : 1;
        return text[..first].ToUpperInvariant() + text[first..].ToLowerInvariant();
    }

    // ---- tasks ----

    private const string Delimiter = " ";

    private static MultipleChoiceItem Shared(string context, IReadOnlyList<string> choices, int gold) =>
        new(choices.Select(c => new LoglikelihoodRequest(context, Delimiter + c)).ToArray(), choices, gold);

    // boolq: "{{passage}}\nQuestion: {{question}}?\nAnswer:", choices ["no", "yes"], target label.
    private static MultipleChoiceItem BoolQ(JsonElement doc)
    {
        var passage = String(doc, "passage");
        var question = String(doc, "question");
        int gold;
        if (doc.TryGetProperty("label", out var label) && label.ValueKind != JsonValueKind.Null)
        {
            gold = Index(label, "label");
        }
        else if (doc.TryGetProperty("answer", out var answer) && answer.ValueKind is JsonValueKind.True or JsonValueKind.False)
        {
            gold = answer.GetBoolean() ? 1 : 0;
        }
        else
        {
            throw new FormatException("missing field 'label' (0/1) or 'answer' (false/true).");
        }
        if (gold is not (0 or 1)) throw new FormatException($"'label' must be 0 or 1 (got {gold}; -1 marks the unlabelled test split).");
        return Shared($"{passage}\nQuestion: {question}?\nAnswer:", ["no", "yes"], gold);
    }

    // piqa: "Question: {{goal}}\nAnswer:", choices [sol1, sol2], target label.
    private static MultipleChoiceItem Piqa(JsonElement doc)
    {
        var goal = String(doc, "goal");
        string[] choices = [String(doc, "sol1"), String(doc, "sol2")];
        return Shared($"Question: {goal}\nAnswer:", choices, Gold(Index(Field(doc, "label"), "label"), choices.Length, "label"));
    }

    // hellaswag: query = preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize()), choices = preprocess(endings).
    private static MultipleChoiceItem HellaSwag(JsonElement doc)
    {
        var ctx = String(doc, "ctx_a") + " " + PythonCapitalize(String(doc, "ctx_b"));
        var query = PreprocessHellaSwag(String(doc, "activity_label") + ": " + ctx);
        var choices = StringArray(doc, "endings").Select(PreprocessHellaSwag).ToArray();
        return Shared(query, choices, Gold(Index(Field(doc, "label"), "label"), choices.Length, "label"));
    }

    // winogrande (partial scoring): contexts sentence[:blank] + option, continuation " " + sentence[blank+1:].strip().
    private static MultipleChoiceItem WinoGrande(JsonElement doc)
    {
        var sentence = String(doc, "sentence");
        var blank = sentence.IndexOf('_', StringComparison.Ordinal);
        if (blank < 0) throw new FormatException("'sentence' has no blank '_'.");
        string[] options = [String(doc, "option1"), String(doc, "option2")];
        var answer = Field(doc, "answer");
        var key = answer.ValueKind switch
        {
            JsonValueKind.String => answer.GetString()!,
            JsonValueKind.Number => answer.GetRawText(),
            _ => throw new FormatException($"'answer' must be \"1\" or \"2\", got {answer.ValueKind}."),
        };
        var gold = key switch
        {
            "1" => 0,
            "2" => 1,
            _ => throw new FormatException($"'answer' must be \"1\" or \"2\" (got \"{key}\"; empty marks the unlabelled test split)."),
        };
        var contexts = options.Select(o => sentence[..blank] + o).ToArray();
        var continuation = Delimiter + PythonStrip(sentence[(blank + 1)..]);
        return new MultipleChoiceItem(contexts.Select(c => new LoglikelihoodRequest(c, continuation)).ToArray(), contexts, gold);
    }

    // arc_easy / arc_challenge: "Question: {{question}}\nAnswer:", choices choices.text, target choices.label.index(answerKey).
    // The AI2 release nests it as question {stem, choices [{text, label}]}; both are read.
    private static MultipleChoiceItem Arc(JsonElement doc)
    {
        var (question, texts, labels) = QuestionAndChoices(doc, "question");
        var gold = AnswerIndex(labels, String(doc, "answerKey"), lstrip: false);
        return Shared($"Question: {question}\nAnswer:", texts, gold);
    }

    // openbookqa: question_stem, choices choices.text, target choices.label.index(answerKey.lstrip()).
    private static MultipleChoiceItem OpenBookQA(JsonElement doc)
    {
        var (question, texts, labels) = doc.TryGetProperty("question_stem", out _)
            ? (String(doc, "question_stem"), ChoiceTexts(doc), ChoiceLabels(doc))
            : QuestionAndChoices(doc, "question_stem");
        var gold = AnswerIndex(labels, String(doc, "answerKey"), lstrip: true);
        return Shared(question, texts, gold);
    }

    /// <summary>
    /// The question and choices of ARC/OpenBookQA in the Hugging Face layout (<c>flatName</c> a string and <c>choices</c>
    /// {text, label}) or the AI2 layout (<c>question</c> {stem, choices [{text, label}]}).
    /// </summary>
    private static (string Question, string[] Texts, string[] Labels) QuestionAndChoices(JsonElement doc, string flatName)
    {
        if (doc.TryGetProperty("question", out var q) && q.ValueKind == JsonValueKind.Object)
        {
            var stem = String(q, "stem", "question.stem");
            var list = Field(q, "choices", "question.choices");
            if (list.ValueKind != JsonValueKind.Array) throw new FormatException("'question.choices' must be an array of {text, label}.");
            var texts = new List<string>();
            var labels = new List<string>();
            foreach (var c in list.EnumerateArray())
            {
                if (c.ValueKind != JsonValueKind.Object) throw new FormatException("'question.choices' must be an array of {text, label}.");
                texts.Add(String(c, "text", "question.choices[].text"));
                labels.Add(String(c, "label", "question.choices[].label"));
            }
            return (stem, texts.ToArray(), labels.ToArray());
        }
        return (String(doc, flatName), ChoiceTexts(doc), ChoiceLabels(doc));
    }

    private static string[] ChoiceTexts(JsonElement doc) => StringArray(ChoicesObject(doc), "text", "choices.text");

    private static string[] ChoiceLabels(JsonElement doc)
    {
        var labels = StringArray(ChoicesObject(doc), "label", "choices.label");
        var texts = ChoiceTexts(doc);
        if (labels.Length != texts.Length)
            throw new FormatException($"'choices.text' has {texts.Length} entries but 'choices.label' has {labels.Length}.");
        return labels;
    }

    private static JsonElement ChoicesObject(JsonElement doc)
    {
        var choices = Field(doc, "choices");
        if (choices.ValueKind != JsonValueKind.Object) throw new FormatException($"'choices' must be an object {{text: [...], label: [...]}}, got {choices.ValueKind}.");
        return choices;
    }

    /// <summary>
    /// The index of an answer key among the choice labels (lm-evaluation-harness: <c>choices.label.index(answerKey)</c>).
    /// Where the key is absent but the labels use the other style (ARC mixes "A"–"E" and "1"–"5"), "1" is matched to
    /// "A", "2" to "B", and so on, both ways.
    /// </summary>
    private static int AnswerIndex(IReadOnlyList<string> labels, string answerKey, bool lstrip)
    {
        var key = lstrip ? PythonLStrip(answerKey) : answerKey;
        var index = IndexOf(labels, key);
        if (index < 0 && key.Length == 1)
        {
            var c = key[0];
            string? other = c is >= '1' and <= '9' ? ((char)('A' + (c - '1'))).ToString()
                : c is >= 'A' and <= 'Z' ? ((char)('1' + (c - 'A'))).ToString() : null;
            if (other is not null) index = IndexOf(labels, other);
        }
        if (index < 0) throw new FormatException($"'answerKey' \"{answerKey}\" is not one of the choice labels [{string.Join(", ", labels)}].");
        return index;

        static int IndexOf(IReadOnlyList<string> labels, string key)
        {
            for (var i = 0; i < labels.Count; i++)
            {
                if (labels[i] == key) return i;
            }
            return -1;
        }
    }

    // ---- JSON helpers ----

    private static JsonElement Field(JsonElement doc, string name, string? path = null) =>
        doc.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null
            ? value
            : throw new FormatException($"missing field '{path ?? name}'.");

    private static string String(JsonElement doc, string name, string? path = null)
    {
        var value = Field(doc, name, path);
        return value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : throw new FormatException($"field '{path ?? name}' must be a string, got {value.ValueKind}.");
    }

    private static string[] StringArray(JsonElement doc, string name, string? path = null)
    {
        var value = Field(doc, name, path);
        if (value.ValueKind != JsonValueKind.Array) throw new FormatException($"field '{path ?? name}' must be an array of strings, got {value.ValueKind}.");
        return value.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String
            ? e.GetString()!
            : throw new FormatException($"field '{path ?? name}' must be an array of strings; it holds a {e.ValueKind}.")).ToArray();
    }

    /// <summary>An integer label given as a JSON number or as a string of digits (Hugging Face HellaSwag stores "3").</summary>
    private static int Index(JsonElement value, string name)
    {
        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var n)) return n;
        if (value.ValueKind == JsonValueKind.String && int.TryParse(value.GetString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var s)) return s;
        throw new FormatException($"field '{name}' must be an integer (got {value.GetRawText()}; an empty label marks an unlabelled split).");
    }

    private static int Gold(int gold, int count, string name) =>
        gold >= 0 && gold < count ? gold : throw new FormatException($"field '{name}' is {gold}, not a choice index in [0, {count}).");

    private static string PythonStrip(string text) => PythonLStrip(PythonRStrip(text));

    private static string PythonLStrip(string text)
    {
        var start = 0;
        while (start < text.Length && RequestEncoder.IsPythonSpace(text[start])) start++;
        return text[start..];
    }

    private static string PythonRStrip(string text)
    {
        var end = text.Length;
        while (end > 0 && RequestEncoder.IsPythonSpace(text[end - 1])) end--;
        return text[..end];
    }

    [GeneratedRegex(@"\[.*?\]", RegexOptions.CultureInvariant)]
    private static partial Regex BracketArtifact();
}
