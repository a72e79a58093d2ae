// Command helmrender renders a Helm chart's templates the way `helm
// template` does, for tests on machines where helm itself cannot be
// installed (neither Debian nor the npm and PyPI registries ship it). It is
// built from Debian's Go packages in GOPATH mode, on the libraries Helm
// itself uses: text/template with sprig's functions plus Helm's own
// (include, tpl, required, toYaml, fromYaml, toJson), values.yaml merged
// with -f files, the merged values checked against values.schema.json with
// gojsonschema, and numbers decoded as Helm decodes them (float64, through
// JSON).
//
// Usage: helmrender -chart DIR [-f values.yaml ...] [-name RELEASE] [-namespace NS]
// Prints JSON: {"manifests": [{"source": "templates/x.yaml", "object": {...}}, ...],
// "notes": "..."}; exits 1 with the reason when values fail the schema, a
// template fails (fail, required) or renders invalid YAML.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"github.com/xeipuuv/gojsonschema"
	yaml2 "gopkg.in/yaml.v2"
	"gopkg.in/yaml.v3"
)

type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

func main() {
	chart := flag.String("chart", "", "chart directory")
	name := flag.String("name", "release", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	var valueFiles files
	flag.Var(&valueFiles, "f", "values file (repeatable)")
	flag.Parse()
	if err := render(*chart, *name, *namespace, valueFiles); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

// loadYAML reads a YAML file as Helm sees it: through JSON, so numbers are
// float64 and maps are map[string]interface{}.
func loadYAML(path string) (map[string]interface{}, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseYAML(data)
}

func parseYAML(data []byte) (map[string]interface{}, error) {
	var raw interface{}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	out := map[string]interface{}{}
	if raw == nil {
		return out, nil
	}
	j, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	return out, json.Unmarshal(j, &out)
}

// merge folds src into dst as Helm merges -f files: maps deep, anything else
// replaced, null deleting the key.
func merge(dst, src map[string]interface{}) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		sm, sok := v.(map[string]interface{})
		dm, dok := dst[k].(map[string]interface{})
		if sok && dok {
			merge(dm, sm)
		} else {
			dst[k] = v
		}
	}
}

func toYAML(v interface{}) string {
	data, err := yaml2.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func render(chartDir, release, namespace string, valueFiles []string) error {
	meta, err := loadYAML(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return fmt.Errorf("Chart.yaml: %w", err)
	}
	values, err := loadYAML(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return fmt.Errorf("values.yaml: %w", err)
	}
	for _, f := range valueFiles {
		extra, err := loadYAML(f)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		merge(values, extra)
	}
	if schema, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json")); err == nil {
		result, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(schema), gojsonschema.NewGoLoader(values))
		if err != nil {
			return fmt.Errorf("values.schema.json: %w", err)
		}
		if !result.Valid() {
			var msgs []string
			for _, e := range result.Errors() {
				msgs = append(msgs, "- "+e.String())
			}
			return fmt.Errorf("values don't meet the specifications of the schema(s):\n%s", strings.Join(msgs, "\n"))
		}
	}

	chartName := fmt.Sprint(meta["name"])
	base := chartName + "/templates"
	t := template.New("chart").Option("missingkey=zero")
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		m, err := parseYAML([]byte(s))
		if err != nil {
			return map[string]interface{}{"Error": err.Error()}
		}
		return m
	}
	funcs["toJson"] = func(v interface{}) string {
		data, _ := json.Marshal(v)
		return string(data)
	}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		var buf bytes.Buffer
		err := t.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		inner, err := t.Clone()
		if err != nil {
			return "", err
		}
		inner, err = inner.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		err = inner.Execute(&buf, data)
		return buf.String(), err
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil || v == "" {
			return nil, fmt.Errorf(msg)
		}
		return v, nil
	}
	funcs["lookup"] = func(...interface{}) map[string]interface{} { return map[string]interface{}{} }
	t.Funcs(funcs)

	paths, err := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	if err != nil {
		return err
	}
	sort.Strings(paths)
	for _, p := range paths {
		text, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if _, err := t.New(base + "/" + filepath.Base(p)).Parse(string(text)); err != nil {
			return err
		}
	}

	top := func(file string) map[string]interface{} {
		return map[string]interface{}{
			"Values": values,
			"Release": map[string]interface{}{
				"Name": release, "Namespace": namespace, "Service": "Helm",
				"IsInstall": true, "IsUpgrade": false, "Revision": 1,
			},
			"Chart": map[string]interface{}{
				"Name": meta["name"], "Version": meta["version"], "AppVersion": meta["appVersion"],
				"Description": meta["description"],
			},
			"Capabilities": map[string]interface{}{
				"KubeVersion": map[string]interface{}{"Version": "v1.30.0", "Major": "1", "Minor": "30"},
			},
			"Template": map[string]interface{}{"Name": base + "/" + file, "BasePath": base},
		}
	}

	type manifest struct {
		Source string                 `json:"source"`
		Object map[string]interface{} `json:"object"`
	}
	out := struct {
		Manifests []manifest `json:"manifests"`
		Notes     string     `json:"notes"`
	}{Manifests: []manifest{}}
	for _, p := range paths {
		file := filepath.Base(p)
		if strings.HasPrefix(file, "_") {
			continue
		}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, base+"/"+file, top(file)); err != nil {
			return err
		}
		rendered := strings.ReplaceAll(buf.String(), "<no value>", "")
		if file == "NOTES.txt" {
			out.Notes = rendered
			continue
		}
		for i, doc := range strings.Split("\n"+rendered, "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			obj, err := parseYAML([]byte(doc))
			if err != nil {
				return fmt.Errorf("templates/%s (document %d) is not valid YAML: %w\n%s", file, i, err, doc)
			}
			if len(obj) == 0 {
				continue
			}
			out.Manifests = append(out.Manifests, manifest{Source: "templates/" + file, Object: obj})
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
